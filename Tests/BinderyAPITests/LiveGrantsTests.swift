@testable import BinderyAPI
import Foundation
import XCTest

/// Every change to the roles file applies to the next look: replaced by rename, written in
/// place, made unparseable, removed, or a swapped symlink; also while other threads look.
final class LiveGrantsTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "live-grants-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func write(_ role: String, to path: String, atomically: Bool = true) throws {
        try Data(#"{"uri:spiffe://test/a":"\#(role)"}"#.utf8).write(to: URL(fileURLWithPath: path), options: atomically ? .atomic : [])
    }

    private func role(_ grants: LiveGrants) -> Role? { grants.current().roles["uri:spiffe://test/a"] }

    func testEveryKindOfChangeAppliesToTheNextLook() throws {
        let path = directory + "/roles.json"
        try write("reader", to: path)
        let grants = try LiveGrants(path: path, configured: RoleMap(), log: { _ in })
        XCTAssertEqual(role(grants), .reader)
        XCTAssertEqual(role(grants), .reader, "nothing changed")
        try write("operator", to: path)
        XCTAssertEqual(role(grants), .operator, "replaced by rename")
        try write("admin", to: path, atomically: false)
        XCTAssertEqual(role(grants), .admin, "written in place")
        try Data("not json".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(role(grants), .admin, "a file that does not parse keeps the last good grants")
        try FileManager.default.removeItem(atPath: path)
        XCTAssertNil(role(grants), "a removed file grants nothing")
        try write("auditor", to: path)
        XCTAssertEqual(role(grants), .auditor, "a file that comes back applies")
    }

    /// A Kubernetes ConfigMap volume: `roles.json` links to `..data/roles.json`, and an update
    /// renames a new `..data` link over the old one.
    func testASwappedSymlinkAppliesToTheNextLook() throws {
        let fileManager = FileManager.default
        for version in ["v1", "v2"] { try fileManager.createDirectory(atPath: "\(directory!)/\(version)", withIntermediateDirectories: true) }
        try write("reader", to: directory + "/v1/roles.json")
        try write("admin", to: directory + "/v2/roles.json")
        try fileManager.createSymbolicLink(atPath: directory + "/..data", withDestinationPath: "v1")
        try fileManager.createSymbolicLink(atPath: directory + "/roles.json", withDestinationPath: "..data/roles.json")
        let grants = try LiveGrants(path: directory + "/roles.json", configured: RoleMap(), log: { _ in })
        XCTAssertEqual(role(grants), .reader)
        try fileManager.createSymbolicLink(atPath: directory + "/..data_tmp", withDestinationPath: "v2")
        XCTAssertEqual(rename(directory + "/..data_tmp", directory + "/..data"), 0)
        XCTAssertEqual(role(grants), .admin)
        try write("operator", to: directory + "/v2/roles.json", atomically: false)
        XCTAssertEqual(role(grants), .operator, "a write through the new link's target")
        try FileManager.default.removeItem(atPath: directory + "/v1")
        try write("auditor", to: directory + "/v2/roles.json", atomically: false)
        XCTAssertEqual(role(grants), .auditor, "the old target's removal ends nothing")
    }

    /// Other threads looking at the same time may be reloading; a look that starts after a
    /// change was made still sees it.
    func testAChangeAppliesToTheNextLookWhileOtherThreadsTakeTheEvents() throws {
        let path = directory + "/roles.json"
        try write("reader", to: path)
        let grants = try LiveGrants(path: path, configured: RoleMap(), log: { _ in })
        let stop = StopFlag()
        let group = DispatchGroup()
        for _ in 0..<3 {
            DispatchQueue.global().async(group: group) {
                while !stop.isSet { _ = grants.current() }
            }
        }
        defer {
            stop.set()
            group.wait()
        }
        let roles: [Role] = [.operator, .admin, .auditor, .reader]
        for round in 0..<300 {
            let expected = roles[round % roles.count]
            try write(expected.rawValue, to: path, atomically: round % 2 == 0)
            XCTAssertEqual(role(grants), expected, "round \(round)")
        }
    }
}

extension LiveGrantsTests {
    /// A rewrite in place of the same size, within the tick of the file's last change, keeps its
    /// stamp (inode, size, times): swapping one identity for another of the same length still
    /// applies to the next look. Kernels before 6.13 stamp files from a clock that moves every
    /// few milliseconds; later ones give a file whose times were read a fine-grained time at its
    /// next change. Times rounded to a second (as some file systems keep them) make the case
    /// the same on every kernel.
    func testASameSizeRewriteWithinOneClockTickAppliesToTheNextLook() throws {
        let path = directory + "/roles.json"
        let second: Int64 = 1_000_000_000
        func grantAdmin(to who: String) throws {
            try Data(#"{"uri:spiffe://test/\#(who)":"admin"}"#.utf8).write(to: URL(fileURLWithPath: path))  // in place
        }
        func stamp() -> [Int64] {
            var info = stat()
            XCTAssertEqual(stat(path, &info), 0)
            return [Int64(info.st_ino), Int64(info.st_size), Int64(info.st_mtim.tv_sec), Int64(info.st_ctim.tv_sec)]
        }
        var reproduced = 0
        for attempt in 0..<50 where reproduced < 5 {
            try grantAdmin(to: "alice")
            let grants = try LiveGrants(path: path, configured: RoleMap(), log: { _ in }, timeGranularity: second)
            XCTAssertEqual(grants.current().roles["uri:spiffe://test/alice"], .admin)
            let before = stamp()
            try grantAdmin(to: "bobby")  // alice revoked, bobby granted
            guard stamp() == before else { continue }  // the second turned: not the case under test
            reproduced += 1
            let now = grants.current().roles
            XCTAssertNil(now["uri:spiffe://test/alice"], "attempt \(attempt): the revoked identity keeps its role")
            XCTAssertEqual(now["uri:spiffe://test/bobby"], .admin, "attempt \(attempt)")
        }
        XCTAssertGreaterThan(reproduced, 0, "no rewrite landed in the second of the last change in 50 tries")
    }

    /// Threads looking while the file changes report each change once, in the order the file
    /// went through them: never an older file's grants over a newer one's (the audit chain
    /// would record grants and revocations that never were).
    func testChangesSeenByManyThreadsAreReportedInTheOrderTheFileWentThroughThem() throws {
        let path = directory + "/roles.json"
        func grant(_ index: Int) throws {
            try Data(#"{"uri:spiffe://test/\#(index)":"admin"}"#.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
        func index(_ map: RoleMap) -> Int? { map.roles.keys.first.flatMap { Int($0.split(separator: "/").last ?? "") } }
        try grant(0)
        let reported = ChangeLog()
        let grants = try LiveGrants(path: path, configured: RoleMap(), log: { _ in }, changed: { reported.append($0, $1) })
        let stop = StopFlag()
        let group = DispatchGroup()
        for _ in 0..<3 {
            DispatchQueue.global().async(group: group) {
                while !stop.isSet { _ = grants.current() }
            }
        }
        for next in 1...300 {
            try grant(next)
            XCTAssertEqual(index(grants.current()), next)
        }
        stop.set()
        group.wait()
        let changes = reported.changes
        XCTAssertEqual(changes.count, 300, "one report per change")
        for (position, change) in changes.enumerated() {
            XCTAssertEqual(index(change.before), position, "report \(position) starts from the grants before it")
            XCTAssertEqual(index(change.after), position + 1, "report \(position) ends at the next file")
        }
    }

    /// A file written in place and read within its tick is read again at each look until it
    /// settles; an unparseable one is logged once, not at every look.
    func testAFileReadWithinItsTickIsLoggedOncePerChange() throws {
        let path = directory + "/roles.json"
        try write("reader", to: path, atomically: false)
        let logged = LogLines()
        let grants = try LiveGrants(path: path, configured: RoleMap(), log: { logged.append($0) })
        try Data("not json, and long enough".utf8).write(to: URL(fileURLWithPath: path))
        for _ in 0..<50 { XCTAssertEqual(role(grants), .reader) }
        XCTAssertEqual(logged.lines.filter { $0.contains("not reloaded") }.count, 1, logged.lines.joined(separator: "\n"))
        try write("auditor", to: path, atomically: false)
        for _ in 0..<50 { XCTAssertEqual(role(grants), .auditor) }
        XCTAssertEqual(logged.lines.filter { $0.contains("reloaded from") }.count, 1, logged.lines.joined(separator: "\n"))
    }
}

/// Changes `LiveGrants` reports, in the order it reported them.
private final class ChangeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [(before: RoleMap, after: RoleMap)] = []
    var changes: [(before: RoleMap, after: RoleMap)] { lock.withLock { collected } }
    func append(_ before: RoleMap, _ after: RoleMap) { lock.withLock { collected.append((before, after)) } }
}

/// Log lines a test collects.
private final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []
    var lines: [String] { lock.withLock { collected } }
    func append(_ line: String) { lock.withLock { collected.append(line) } }
}

/// A flag threads set and read.
private final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
