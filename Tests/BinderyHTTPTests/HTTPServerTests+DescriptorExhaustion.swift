@testable import BinderyHTTP
import Foundation
import Glibc
import XCTest

extension HTTPServerTests {
    /// When accept4 fails with EMFILE while a connection waits, the loop stops polling its
    /// listener instead of retrying in a tight loop, and accepts again once descriptors free up.
    ///
    /// The server shares this process's descriptor table: the test lowers the soft
    /// RLIMIT_NOFILE until no descriptor is free, then frees exactly one for a client socket,
    /// so the server cannot accept that client's connection.
    func testDescriptorExhaustionPausesAcceptingWithoutSpinning() throws {
        let log = LogLines()
        let port = try start(log: log) {
            $0.eventLoops = 1
            $0.handshakeTimeout = .seconds(120)  // the silent clients below stay until the test closes them
        }
        var held: [Int32] = []  // plain TCP clients, each with a server-side descriptor
        var spare = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            for fd in held { Glibc.close(fd) }
            if spare >= 0 { Glibc.close(spare) }
        }
        XCTAssertGreaterThanOrEqual(spare, 0)
        for _ in 0..<4 { held.append(try TLSTestClient.connect(port: port)) }
        eventually("the held connections are accepted") { server!.connectionCount == 4 }

        var original = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &original), 0)
        let saved = original
        addTeardownBlock {
            var restored = saved
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &restored)
        }
        var lowered = original
        lowered.rlim_cur = rlim_t(try DescriptorTable.limitLeaving(free: 0))
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0, "setrlimit: errno \(errno)")
        let probe = dup(0)
        if probe >= 0 { Glibc.close(probe) }
        XCTAssertEqual(probe, -1, "no descriptor is free")

        Glibc.close(spare)  // one free descriptor, for the client's socket
        spare = -1
        held.append(try TLSTestClient.connect(port: port))
        eventually("accept4 fails with EMFILE and the loop pauses accepting") { server!.acceptPauses.current > 0 }
        XCTAssertEqual(server!.connectionCount, 4, "the new connection waits in the backlog")
        XCTAssertTrue(log.all.contains { $0.contains("accept4") && $0.contains("(errno \(EMFILE))") }, "\(log.all)")

        let (cpu, wakeups) = ProcessCPU.observe(server!)
        XCTAssertLessThan(cpu, 0.3, "CPU seconds burnt in a second out of descriptors with a connection waiting")
        XCTAssertLessThan(wakeups, 100, "event-loop wakeups in a second out of descriptors with a connection waiting")

        for fd in held { Glibc.close(fd) }  // the server sees them end and frees its descriptors
        held.removeAll()
        XCTAssertEqual(try get(try client(port))?.status, 200, "accepting resumed once descriptors were freed")
    }
}

/// The process's descriptor table, read from /proc/self/fd.
enum DescriptorTable {
    /// Descriptors open now (those of the listing itself included).
    static func openDescriptors() throws -> Set<Int32> {
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
        return Set(names.compactMap { Int32($0) })
    }

    /// The soft RLIMIT_NOFILE under which `free` descriptor numbers are unused: open(2) takes
    /// the lowest free number and fails with EMFILE when none is below the limit.
    static func limitLeaving(free: Int) throws -> Int {
        let open = try openDescriptors().filter { fcntl($0, F_GETFD) >= 0 }  // the listing's own is closed by now
        var unused = 0, number: Int32 = 0
        while true {
            if !open.contains(number) {
                if unused == free { return Int(number) }
                unused += 1
            }
            number += 1
        }
    }
}
