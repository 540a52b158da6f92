@testable import BinderyHTTP
import Foundation
import Glibc
import XCTest

extension HTTPServerTests {
    private func startLogging(maxConnections: Int, log: LogLines) throws -> HTTPServer {
        let tls = TLSConfiguration(certificatePath: pki.path("server"), privateKeyPath: pki.key("server"),
                                   clientCABundlePath: pki.path("ca"))
        var configuration = HTTPServerConfiguration(listen: ["127.0.0.1:0"], tls: tls)
        configuration.eventLoops = 1
        configuration.maxConnections = maxConnections
        let server = try HTTPServer(configuration: configuration, handler: EchoHandler()) { log.append($0) }
        try server.start()
        return server
    }

    private func descriptorLimit() -> rlimit {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return limit
    }

    /// At start the soft RLIMIT_NOFILE rises to the hard limit, and a connection cap that
    /// cannot fit under it is lowered (and said so in the log).
    func testStartRaisesTheDescriptorLimitAndCapsConnectionsToIt() throws {
        let original = descriptorLimit()
        addTeardownBlock {
            var restored = original
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &restored)
        }
        var lowered = original
        lowered.rlim_cur = min(original.rlim_max, 512)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)
        let hard = Int(clamping: original.rlim_max)

        let log = LogLines()
        let capped = try startLogging(maxConnections: hard + 1000, log: log)
        defer { capped.shutdown() }
        XCTAssertEqual(descriptorLimit().rlim_cur, original.rlim_max, "the soft limit is raised to the hard limit")
        XCTAssertEqual(capped.configuration.maxConnections, hard + 1000, "the configuration keeps what was asked")
        XCTAssertLessThanOrEqual(capped.effectiveMaxConnections, hard - DescriptorLimit.reserve, "room is kept for other descriptors")
        XCTAssertGreaterThan(capped.effectiveMaxConnections, hard / 2)
        XCTAssertTrue(log.all.contains { $0.contains("maxConnections") && $0.contains("\(capped.effectiveMaxConnections)") },
                      "the lowered cap is logged: \(log.all)")
        XCTAssertEqual(try get(try client(capped.boundAddresses[0].port))?.status, 200)

        let quiet = LogLines()
        let fits = try startLogging(maxConnections: 100, log: quiet)
        defer { fits.shutdown() }
        XCTAssertEqual(fits.effectiveMaxConnections, 100, "a cap that fits is kept")
        XCTAssertFalse(quiet.all.contains { $0.contains("maxConnections") }, "nothing to report: \(quiet.all)")
    }

    /// The cap for a small descriptor limit leaves the reserve and the 503 overflow slots free.
    func testConnectionCapLeavesRoomForEveryOtherDescriptor() {
        XCTAssertEqual(DescriptorLimit.connectionCap(configured: 10_000, descriptorLimit: 1024),
                       1024 - DescriptorLimit.reserve - HTTPServer.overflowSlots)
        XCTAssertEqual(DescriptorLimit.connectionCap(configured: 10_000, descriptorLimit: 1_048_576), 10_000)
        XCTAssertEqual(DescriptorLimit.connectionCap(configured: 10_000, descriptorLimit: 100), 1, "never below one")
    }
}
