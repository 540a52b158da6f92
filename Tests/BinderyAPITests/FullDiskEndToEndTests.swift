import Foundation
import Glibc
import XCTest

/// A full disk answers 503 and recovers when space comes back, with the audit chain intact.
final class FullDiskEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    func testAFullDiskAnswers503PromptlyAndRecoversWithTheChainIntact() throws {
        // A small tmpfs as the data dir (the suite runs as root, as CI does).
        XCTAssertEqual(mount("tmpfs", directory, "tmpfs", 0, "size=24m,mode=0700"), 0, "mount tmpfs: errno \(errno) (needs root)")
        defer { umount2(directory, Int32(MNT_DETACH)) }
        try startServer()
        XCTAssertEqual(try curl("/v1/vms", method: "POST", body: #"{"name":"before"}"#).status, 201)

        // Fill the disk.
        let filler = directory + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let chunk = [UInt8](repeating: 0xAB, count: 1 << 20)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        XCTAssertEqual(errno, ENOSPC)
        close(fd)

        var statuses: [Int] = []
        for attempt in 0..<40 {
            let started = Date()
            let answer = try curl("/v1/vms", method: "POST", body: #"{"name":"full-\#(attempt)"}"#)
            statuses.append(answer.status)
            XCTAssertLessThan(Date().timeIntervalSince(started), 15, "answered promptly, not after a hang")
            if answer.status == 503 {
                XCTAssertEqual(try json(answer.body)["type"] as? String, "https://bindery.dev/problems/store-unavailable")
                XCTAssertTrue(answer.headers.lowercased().contains("retry-after:"), answer.headers)
                break
            }
        }
        XCTAssertEqual(statuses.last, 503, "a full disk is 503, never a 500 or a hang: \(statuses)")
        XCTAssertFalse(statuses.contains(500), "\(statuses)")
        XCTAssertEqual(try curl("/healthz").status, 200, "the daemon lives")

        XCTAssertEqual(unlink(filler), 0)
        let deadline = Date().addingTimeInterval(20)
        var recovered = try curl("/v1/vms", method: "POST", body: #"{"name":"after"}"#)
        while recovered.status != 201 && Date() < deadline {
            usleep(50_000)
            recovered = try curl("/v1/vms", method: "POST", body: #"{"name":"after"}"#)
        }
        XCTAssertEqual(recovered.status, 201, "writes work again once there is room: \(recovered.body)")
        let verification = try json(try curl("/v1/audit/verify").body)
        XCTAssertEqual(verification["valid"] as? Bool, true, "\(verification)")
        let names = (try json(try curl("/v1/vms").body)["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        XCTAssertTrue(names.contains("before") && names.contains("after"), "\(names)")
    }
}
