@testable import BinderyHTTP
import Foundation
import Glibc
import XCTest

/// What a streaming handler's producer did, readable from the test thread.
final class StreamRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var produced = 0
    private var released = false

    func add(_ count: Int) { lock.withLock { produced += count } }
    func release() { lock.withLock { released = true } }
    /// Bytes handed to the server so far.
    var bytesProduced: Int { lock.withLock { produced } }
    /// The server let go of the producer (its task ended).
    var isReleased: Bool { lock.withLock { released } }
}

/// Which piece a producer is at.
final class PieceCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    /// The index of the piece asked for now.
    func take() -> Int { lock.withLock { defer { next += 1 }; return next } }
}

/// Captured only by a producer's closure: its deinit says the server let go of the producer.
final class ReleaseSentinel: @unchecked Sendable {
    let record: StreamRecord
    init(_ record: StreamRecord) { self.record = record }
    deinit { record.release() }
}

/// Answers `/plain` with a plain body; streams `/pieces` (fixed pieces, with an empty one), `/large?n` (n pieces of 64 KiB),
/// `/endless` (64 KiB pieces until cancelled) and `/failing` (two pieces, then an error).
struct StreamingHandler: HTTPHandler {
    let record: StreamRecord
    static let pieceSize = 64 * 1024

    struct ProducerFailed: Error {}

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        if request.head.path == "/plain" { return .text(200, "not streamed") }
        let sentinel = ReleaseSentinel(record)
        let counter = PieceCounter()
        let pieces: [[UInt8]] = [Array("alpha\n".utf8), [], Array("beta, a longer piece\n".utf8), [UInt8](repeating: 0x78, count: 70_000)]
        let limit = Int(request.head.query ?? "") ?? 0
        let path = request.head.path
        let stream = HTTPBodyStream {
            _ = sentinel
            let index = counter.take()
            let piece: [UInt8]?
            switch path {
            case "/pieces": piece = index < pieces.count ? pieces[index] : nil
            case "/large": piece = index < limit ? [UInt8](repeating: UInt8(0x61 + index % 26), count: Self.pieceSize) : nil
            case "/endless": piece = [UInt8](repeating: 0x65, count: Self.pieceSize)
            default:
                if index == 2 { throw ProducerFailed() }
                piece = Array("piece \(index)\n".utf8)
            }
            if let piece { sentinel.record.add(piece.count) }
            return piece
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/x-ndjson")], stream: stream)
    }
}

extension HTTPServerTests {
    /// A streamed body goes out in chunks that decode to exactly what was produced (empty pieces
    /// skipped, no Content-Length), and the connection then serves the next request.
    func testStreamedBodyIsChunkedAndTheConnectionIsKeptAlive() throws {
        let record = StreamRecord()
        let port = try start(StreamingHandler(record: record))
        let connection = try client(port)
        try connection.send("GET /pieces HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = try XCTUnwrap(connection.readChunkedResponse(), "a complete chunked body, last chunk included")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["transfer-encoding"], "chunked")
        XCTAssertNil(response.headers["content-length"])
        XCTAssertEqual(response.headers["content-type"], "application/x-ndjson")
        XCTAssertEqual(response.body, "alpha\nbeta, a longer piece\n" + String(repeating: "x", count: 70_000))
        XCTAssertEqual(record.bytesProduced, 6 + 21 + 70_000)

        try connection.send("GET /large?2 HTTP/1.1\r\nHost: x\r\n\r\n")
        let second = try XCTUnwrap(connection.readChunkedResponse(), "the same connection serves a second stream")
        XCTAssertEqual(second.body.utf8.count, 2 * StreamingHandler.pieceSize)
        XCTAssertTrue(second.body.hasPrefix("aaaa") && second.body.hasSuffix("bbbb"))
    }

    /// HTTP/1.0 has no chunked coding: the body ends when the server closes the connection.
    func testStreamedBodyToAnHTTP10ClientEndsWithTheConnection() throws {
        let port = try start(StreamingHandler(record: StreamRecord()))
        let connection = try client(port)
        try connection.send("GET /pieces HTTP/1.0\r\nHost: x\r\n\r\n")
        let head = try XCTUnwrap(connection.readResponse(toHead: true))
        XCTAssertNil(head.headers["transfer-encoding"])
        XCTAssertEqual(head.headers["connection"], "close")
        let body = connection.readToEnd()
        XCTAssertEqual(body.count, 6 + 21 + 70_000, "every piece, unframed, then the close")
    }

    /// A client that reads slowly slows the producer: the server never holds more than a
    /// bounded amount ahead of what the client has read, whatever the body's size.
    func testSlowReaderHoldsTheProducerBack() throws {
        let record = StreamRecord()
        let port = try start(StreamingHandler(record: record))
        let connection = try client(port)
        var small: Int32 = 64 * 1024  // a small receive window keeps the kernel's share small too
        setsockopt(connection.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let pieces = 1600  // 100 MiB
        try connection.send("GET /large?\(pieces) HTTP/1.1\r\nHost: x\r\n\r\n")
        eventually("the producer has started") { record.bytesProduced >= 1 << 20 }
        // Socket buffers (the server's send buffer grows to 4 MiB), the loop's low-water mark
        // and a piece in flight: far less than this. Without backpressure the producer runs to
        // 100 MiB while the client is still at its first megabytes.
        let bound = 12 << 20
        var worst = 0
        let response = connection.readChunkedResponse { received in
            worst = max(worst, record.bytesProduced - received)
            usleep(received < 4 << 20 ? 200 : 0)  // read the first megabytes slowly
        }
        XCTAssertEqual(response?.body.utf8.count, pieces * StreamingHandler.pieceSize)
        XCTAssertLessThanOrEqual(worst, bound, "bytes produced ahead of the reader (\(worst >> 20) MiB)")
        XCTAssertEqual(record.bytesProduced, pieces * StreamingHandler.pieceSize)
    }

    /// A client that disconnects mid-stream ends the producer: its task is cancelled and
    /// released, and the connection is closed, instead of producing for nobody.
    func testClientThatDisconnectsMidStreamEndsTheProducer() throws {
        for reset in [false, true] {
            let record = StreamRecord()
            let port = try start(StreamingHandler(record: record))
            var connection: TLSTestClient? = try client(port)
            try connection!.send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            eventually("the stream is flowing") { record.bytesProduced >= 2 << 20 }
            if reset {
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(connection!.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            }
            connection = nil
            eventually("the producer is released (reset: \(reset))") { record.isReleased }
            eventually("the connection is closed (reset: \(reset))") { server!.connectionCount == 0 }
            let after = record.bytesProduced
            XCTAssertEqual(try get(try client(port), "/plain")?.status, 200, "the server still serves")
            XCTAssertEqual(record.bytesProduced, after, "nothing more produced for the gone client")
            server?.shutdown()
            server = nil
        }
    }

    /// A producer that fails cuts the body short: the connection closes before the last chunk,
    /// so the client cannot take a partial body for a whole one.
    func testFailingProducerCutsTheBodyWithoutTheLastChunk() throws {
        let port = try start(StreamingHandler(record: StreamRecord()))
        let connection = try client(port)
        try connection.send("GET /failing HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertNil(connection.readChunkedResponse(), "no last chunk: the body is incomplete")
        XCTAssertTrue(connection.isClosedByServer())
    }
}
