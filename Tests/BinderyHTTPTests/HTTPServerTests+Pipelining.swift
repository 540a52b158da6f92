@testable import BinderyHTTP
import Foundation
import Glibc
import XCTest

/// How many requests a handler has answered, readable from the test thread.
final class AnswerCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var answered = 0

    func add() { lock.withLock { answered += 1 } }
    /// Requests answered so far.
    var count: Int { lock.withLock { answered } }
}

/// Answers every request on the event loop with a 16 KiB body.
struct BulkyHandler: HTTPHandler {
    let counter: AnswerCounter
    static let bodySize = 16 * 1024

    func respond(to request: HTTPRequest) async -> HTTPResponse { respondImmediately(to: request)! }
    func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
        counter.add()
        return HTTPResponse(status: 200, body: [UInt8](repeating: 0x62, count: Self.bodySize))
    }
}

extension HTTPServerTests {
    /// A client that pipelines requests and reads nothing gets no more of them answered than
    /// fit the output limit and the socket buffers: answers given on the loop do not pile up in
    /// the server. Once it reads, the rest are answered, in order.
    func testPipelinedRequestsWaitWhileTheClientReadsNothing() throws {
        let counter = AnswerCounter()
        let port = try start(BulkyHandler(counter: counter))
        let connection = try client(port)
        var small: Int32 = 64 * 1024
        setsockopt(connection.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let requests = 2000  // 32 MiB of answers for 56 KiB of requests
        try connection.send(String(repeating: "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", count: requests))
        // The server stops answering once its output backs up: wait until the count holds still.
        var last = -1, stableSince = Date()
        eventually("the server stops answering") {
            let now = counter.count
            if now != last { (last, stableSince) = (now, Date()) }
            return now > 0 && Date().timeIntervalSince(stableSince) > 0.5
        }
        // Socket buffers (the server's send buffer grows to about 4 MiB) and the 256 KiB output
        // limit hold some 300 answers; without the limit all 2,000 are made at once.
        XCTAssertLessThan(counter.count, requests / 2, "answers made ahead of a client that reads nothing")
        for index in 0..<requests {
            guard let response = connection.readResponse() else { return XCTFail("no answer \(index)") }
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.body.utf8.count, BulkyHandler.bodySize)
        }
        XCTAssertEqual(counter.count, requests)
    }
}
