import Foundation
import XCTest

/// The daemon's event loops cannot be made to spin, and recover when descriptors free up.
final class EventLoopEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    /// utime + stime of `pid`, in seconds.
    private func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ") ")!.upperBound...].split(separator: " ")
        return (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func inFlight(_ operation: String) throws -> Int {
        let metrics = try curl("/metrics").body
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("bindery_http_requests_in_flight{operation=\"\(operation)\"}") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    private func eventually(_ what: String, timeout: Double = 20, _ condition: () throws -> Bool) rethrows {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            if Date() > deadline { return XCTFail("never happened: \(what)") }
            usleep(20_000)
        }
    }

    func testClientsThatHangUpOnALongPollCostNothing() throws {
        try startServer()
        let pid = try XCTUnwrap(server?.processIdentifier)
        let pki = directory + "/pki"
        var watchers: [Process] = []
        for _ in 0..<4 {
            let watcher = Process()
            watcher.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            watcher.arguments = ["-s", "--cacert", "\(pki)/ca.pem", "--cert", "\(pki)/admin.pem", "--key", "\(pki)/admin-key.pem",
                                 "https://localhost:\(port)/v1/events?after=999999&timeoutSeconds=120"]
            watcher.standardOutput = FileHandle.nullDevice
            try watcher.run()
            watchers.append(watcher)
        }
        try eventually("four long-polls in flight") { try inFlight("watchEvents") == 4 }
        for watcher in watchers { kill(watcher.processIdentifier, SIGKILL); watcher.waitUntilExit() }
        try eventually("the hung-up long-polls are cancelled, not left to their 120 s timeout") { try inFlight("watchEvents") == 0 }
        let before = try cpuSeconds(pid)
        usleep(1_000_000)
        let spent = try cpuSeconds(pid) - before
        XCTAssertLessThan(spent, 0.3, "server CPU over a second after four clients hung up mid long-poll")
        XCTAssertEqual(try curl("/healthz").status, 200)
    }

    func testDescriptorExhaustionNeitherSpinsNorSticks() throws {
        // 160 descriptors: room for the store, the kernel and a few dozen connections, no more.
        try startServer([], prefix: ["/usr/bin/prlimit", "--nofile=160:160"])
        let pid = try XCTUnwrap(server?.processIdentifier)
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        for _ in 0..<400 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if connected == 0 { sockets.append(fd) } else { close(fd) }
        }
        XCTAssertGreaterThan(sockets.count, 200, "the backlog took more connections than the server has descriptors")
        let before = try cpuSeconds(pid)
        usleep(1_000_000)
        XCTAssertLessThan(try cpuSeconds(pid) - before, 0.3, "server CPU over a second with its descriptors exhausted")
        sockets.forEach { close($0) }
        sockets.removeAll()
        try eventually("served again once descriptors free up") { try curl("/healthz").status == 200 }
    }
}
