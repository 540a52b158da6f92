@testable import BinderyHTTP
import Foundation
import XCTest

/// Answers on the loop for `/now…`, in a task for anything else (`/slow…` after 300 ms): the
/// body names the path.
struct MixedHandler: HTTPHandler {
    func respond(to request: HTTPRequest) async -> HTTPResponse {
        if request.head.path.hasPrefix("/slow") { try? await Task.sleep(nanoseconds: 300_000_000) }
        return answer(request)
    }
    func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
        request.head.path.hasPrefix("/now") ? answer(request) : nil
    }
    private func answer(_ request: HTTPRequest) -> HTTPResponse {
        .text(200, "\(request.head.path) \(request.body.count)")
    }
}

extension HTTPServerTests {
    /// OpenSSL reads records ahead of what the loop has parsed, where epoll cannot see them.
    /// Requests one TLS record each, piled up in the socket behind a slow one and arriving in one
    /// write, more in all than the connection's input limit: every one is answered, in order,
    /// whether the requests before it are answered on the loop or in tasks (reading stops while
    /// one is in flight, and goes on from what OpenSSL holds when it is answered).
    func testRecordsReadAheadOfTheParserAreAllAnswered() throws {
        let port = try start(MixedHandler()) { configuration in
            configuration.limits.maxHeaderBytes = 1024
            configuration.limits.maxBodyBytes = 1024
        }
        let inputLimit = 8 * 1024 + 1024 + 1024 + 64 * 1024  // request line, header section, body, slack (EventLoop)
        let body = String(repeating: "b", count: 1000)
        for (prefix, extra) in [("/now", 1), ("/now", 3), ("/now", 9), ("/task", 2), ("/mixed", 4)] {
            let connection = try client(port)
            // The loop reads nothing while the slow request is in flight: the records pile up in the socket.
            var records = ["GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"], expected = ["/slow 0"]
            while records.joined().utf8.count < inputLimit + extra * 1050 {
                let index = records.count
                let path = prefix == "/mixed" ? (index % 3 == 0 ? "/task/\(index)" : "/now/\(index)") : "\(prefix)/\(index)"
                records.append("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
                expected.append("\(path) \(body.utf8.count)")
            }
            try connection.sendRecordsInOneWrite(records)
            for (index, answer) in expected.enumerated() {
                guard let response = connection.readResponse() else {
                    return XCTFail("\(prefix) + \(extra): no answer \(index) of \(expected.count) (the rest wait in OpenSSL)")
                }
                XCTAssertEqual(response.status, 200)
                XCTAssertEqual(response.body, answer, "\(prefix) + \(extra): answer \(index)")
            }
        }
    }

    /// A client that sends its requests and shuts down its side without close_notify (as
    /// `ncat --send-only` does): every request is answered and the connection closes at once,
    /// not when its keep-alive deadline comes (after the FIN, EPOLLIN is no longer watched, so
    /// the loop must read to the end itself).
    func testRequestsFollowedByAHalfCloseAreAnsweredAndTheConnectionCloses() throws {
        let port = try start(MixedHandler()) { $0.keepAliveTimeout = .seconds(60) }
        for count in [1, 40] {
            let connection = try client(port)
            let records = (0..<count).map { "GET /now/\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }
            try connection.sendRecordsInOneWrite(records)
            XCTAssertEqual(Glibc.shutdown(connection.fd, Int32(SHUT_WR)), 0)
            for index in 0..<count {
                guard let response = connection.readResponse() else { return XCTFail("\(count) requests: no answer \(index)") }
                XCTAssertEqual(response.body, "/now/\(index) 0")
            }
            let started = Date()
            eventually("the server closes the half-closed connection") { self.server!.connectionCount == 0 }
            XCTAssertLessThan(Date().timeIntervalSince(started), 5, "held open \(count) requests after the FIN")
        }
    }
}
