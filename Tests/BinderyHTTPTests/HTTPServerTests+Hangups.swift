@testable import BinderyHTTP
import Foundation
import Glibc
import XCTest

/// A long poll: sleeps 30 s unless cancelled, and records what it saw.
struct LongPollHandler: HTTPHandler {
    let record: LongPollRecord

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        record.start()
        do {
            try await Task.sleep(for: .seconds(30))
        } catch {
            record.finish(cancelled: Task.isCancelled)
            return .text(503, "cancelled")
        }
        record.finish(cancelled: false)
        return .text(200, "no news")
    }

    func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
        request.head.path == "/health" ? .text(200, "ok") : nil
    }
}

/// What a `LongPollHandler` saw, readable from the test thread.
final class LongPollRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var started = false
    private var cancelled: Bool?

    func start() { lock.withLock { started = true } }
    func finish(cancelled: Bool) { lock.withLock { self.cancelled = cancelled } }
    /// The handler is sleeping (or has been).
    var hasStarted: Bool { lock.withLock { started } }
    /// nil while the handler sleeps; then whether its task was cancelled.
    var sawCancellation: Bool? { lock.withLock { cancelled } }
}

extension HTTPServerTests {
    /// A client that resets its connection (RST) while its request is in flight: the loop must
    /// not spin on the connection's EPOLLERR/EPOLLHUP, and the handler's task is cancelled.
    func testResetWithARequestInFlightCancelsTheHandlerWithoutSpinning() throws {
        try assertHangupWithARequestInFlight(reset: true)
    }

    /// The same for a client that closes normally (FIN): EPOLLRDHUP while a handler works.
    func testCloseWithARequestInFlightCancelsTheHandlerWithoutSpinning() throws {
        try assertHangupWithARequestInFlight(reset: false)
    }

    private func assertHangupWithARequestInFlight(reset: Bool, line: UInt = #line) throws {
        let record = LongPollRecord()
        let port = try start(LongPollHandler(record: record))
        var connection: TLSTestClient? = try client(port)
        try connection!.send("GET /v1/events?wait=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        eventually("the handler is sleeping") { record.hasStarted }
        XCTAssertNil(record.sawCancellation, "the handler sleeps until something wakes it", line: line)
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            XCTAssertEqual(setsockopt(connection!.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size)), 0)
        }
        connection = nil  // closes the socket: RST with SO_LINGER 0, else FIN

        // The handler would sleep for another 29 s: the loops must idle meanwhile, not spin.
        let (cpu, wakeups) = ProcessCPU.observe(server!)
        XCTAssertLessThan(cpu, 0.3, "CPU seconds burnt in the second after the hangup", line: line)
        XCTAssertLessThan(wakeups, 100, "event-loop wakeups in the second after the hangup", line: line)

        eventually("the handler's task is cancelled") { record.sawCancellation != nil }
        XCTAssertEqual(record.sawCancellation, true, "Task.sleep ended by cancellation", line: line)
        eventually("the connection is closed") { server!.connectionCount == 0 }
        XCTAssertEqual(try get(try client(port), "/health")?.status, 200, "the server still serves", line: line)
    }
}
