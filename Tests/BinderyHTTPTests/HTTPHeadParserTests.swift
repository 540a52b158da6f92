@testable import BinderyHTTP
import XCTest

/// Every parser rule, each with the form it accepts and the form it rejects.
final class HTTPHeadParserTests: XCTestCase {
    private func parse(_ text: String, limits: HTTPLimits = HTTPLimits()) -> HTTPHeadParser.Result {
        Array(text.utf8).withUnsafeBufferPointer { HTTPHeadParser.parse($0, limits: limits) }
    }

    private func head(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> HTTPRequestHead? {
        guard case let .head(head, length) = parse(text) else {
            XCTFail("expected a head, got \(parse(text))", file: file, line: line)
            return nil
        }
        XCTAssertEqual(length, text.utf8.count, file: file, line: line)
        return head
    }

    private func refused(_ text: String, _ status: Int, _ reason: String, limits: HTTPLimits = HTTPLimits(),
                         file: StaticString = #filePath, line: UInt = #line) {
        guard case let .failure(error) = parse(text, limits: limits) else {
            return XCTFail("expected \(status), got \(parse(text, limits: limits))", file: file, line: line)
        }
        XCTAssertEqual(error.status, status, error.reason, file: file, line: line)
        XCTAssertTrue(error.reason.contains(reason), "\(error.reason) should mention \(reason)", file: file, line: line)
    }

    func testSimpleGet() throws {
        let parsed = try XCTUnwrap(head("GET /v1/vms?limit=5 HTTP/1.1\r\nHost: a\r\nX-Request-Id: r1\r\n\r\n"))
        XCTAssertEqual(parsed.method, "GET")
        XCTAssertEqual(parsed.path, "/v1/vms")
        XCTAssertEqual(parsed.query, "limit=5")
        XCTAssertEqual(parsed.minorVersion, 1)
        XCTAssertEqual(parsed.header("x-request-id"), "r1")
        XCTAssertEqual(parsed.framing, .none)
        XCTAssertTrue(parsed.keepAlive)
    }

    func testIncompleteUntilTheEmptyLine() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\n"), .incomplete)
        XCTAssertEqual(parse("GET / HTT"), .incomplete)
        XCTAssertEqual(parse(""), .incomplete)
    }

    func testLeadingEmptyLinesAreIgnored() {
        XCTAssertNotNil(head("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    }

    func testRequestLineLimit() {
        var limits = HTTPLimits()
        limits.maxRequestLine = 64
        let ok = "GET /" + String(repeating: "a", count: 64 - 14) + " HTTP/1.1"
        XCTAssertEqual(ok.utf8.count, 64)
        if case .failure = parse(ok + "\r\nHost: a\r\n\r\n", limits: limits) { XCTFail("a 64-byte line fits") }
        refused("GET /" + String(repeating: "a", count: 60) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, "request line", limits: limits)
        refused("GET /" + String(repeating: "a", count: 100), 414, "request line", limits: limits)  // before the line ends
        refused("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n", 414, "8192")
    }

    func testHeaderSectionLimits() {
        let big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 33 * 1024) + "\r\n\r\n"
        refused(big, 431, "header section")
        refused("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 33 * 1024), 431, "header section")
        let many = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<100).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        refused(many, 431, "more than 100")
        let hundred = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<99).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        XCTAssertEqual(head(hundred)?.headers.count, 100)
    }

    func testContentLength() {
        XCTAssertEqual(head("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n")?.framing, .contentLength(12))
        XCTAssertEqual(head("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")?.framing, HTTPRequestHead.BodyFraming.none)
        refused("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400, "duplicate Content-Length")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400, "invalid Content-Length")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "invalid Content-Length")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, "invalid Content-Length")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400, "invalid Content-Length")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "invalid Content-Length")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n", 413, "exceeds")
    }

    func testTransferEncoding() {
        XCTAssertEqual(head("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing, .chunked)
        XCTAssertEqual(head("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n")?.framing, .chunked)
        refused("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "both Content-Length and Transfer-Encoding")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400, "does not end in chunked")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "does not end in chunked")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "gzip")
        refused("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "more than once")
        refused("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0")
    }

    func testHostRules() {
        XCTAssertNotNil(head("GET / HTTP/1.0\r\n\r\n"), "HTTP/1.0 needs no Host")
        refused("GET / HTTP/1.1\r\n\r\n", 400, "without Host")
        refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host")
        refused("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, "more than one Host")
    }

    func testFieldSyntax() {
        XCTAssertEqual(head("GET / HTTP/1.1\r\nHost:   a b \t\r\n\r\n")?.header("host"), "a b")
        refused("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", 400, "obsolete line folding")
        refused("GET / HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", 400, "white space between a field name and its colon")
        refused("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400, "invalid character in a field name")
        refused("GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", 400, "without a field name")
        refused("GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", 400, "without a field name")
        refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400, "NUL")
        refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "CR or LF")
        refused("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7}b\r\n\r\n", 400, "control character")
        XCTAssertEqual(head("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n")?.header("x"), "a\tb")
    }

    func testBareLFIsRefused() {
        refused("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF")
        refused("GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF")
        refused("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF")
    }

    func testAnyTokenIsAMethodForTheHandler() {
        // The application answers methods it does not serve (405 with Allow), not the parser.
        for method in ["TRACE", "PROPFIND", "FOO", "BREW", "get", "M-SEARCH", "!#$%&'*+-.^_`|~09azAZ"] {
            XCTAssertEqual(head("\(method) /x HTTP/1.1\r\nHost: a\r\n\r\n")?.method, method)
        }
        XCTAssertEqual(head("PURGE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n")?.framing, .contentLength(2))
    }

    func testMethodsThatAreNotTokensAreRefused() {
        refused("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "token")
        refused("G\u{7f}T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "token")
        refused("G\tT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "token")
        refused("G\u{e9}T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "token")
        refused("\"GET\" / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "token")
    }

    func testMethodLengthLimit() {
        // RFC 9112 §3: a method longer than any the server implements gets 501.
        let longest = String(repeating: "M", count: HTTPLimits().maxMethodLength)
        XCTAssertEqual(head("\(longest) / HTTP/1.1\r\nHost: a\r\n\r\n")?.method, longest)
        refused("\(longest)M / HTTP/1.1\r\nHost: a\r\n\r\n", 501, "longer than")
        refused(String(repeating: "M", count: 9000) + " / HTTP/1.1\r\nHost: a\r\n\r\n", 414, "request line")
    }

    func testConnectIsNotImplemented() {
        // Bindery is an origin server, not a proxy: no tunnels, whatever the target's form.
        refused("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 501, "CONNECT")
        refused("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 501, "CONNECT")
    }

    func testVersions() {
        refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP/2.0")
        refused("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "HTTP/1.2")
        refused("GET / HTTP/1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version")
        refused("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version")
        refused("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "METHOD SP TARGET")
        refused("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "METHOD SP TARGET")
        XCTAssertEqual(head("GET / HTTP/1.0\r\n\r\n")?.minorVersion, 0)
    }

    func testTargets() {
        let absolute = head("GET http://example.com:8443/v1/host?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        XCTAssertEqual(absolute?.path, "/v1/host")
        XCTAssertEqual(absolute?.query, "x=1")
        XCTAssertEqual(head("GET https://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")?.path, "/")
        XCTAssertEqual(head("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")?.path, "*")
        refused("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "neither origin-form")
        refused("GET v1 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "neither origin-form")
        refused("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "forbidden character")
        refused("GET /a\u{7f} HTTP/1.1\r\nHost: a\r\n\r\n", 400, "forbidden character")
        refused("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "without an authority")
    }

    func testKeepAliveAndExpect() {
        XCTAssertEqual(head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(head("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(head("GET / HTTP/1.0\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?.keepAlive, true)
        XCTAssertEqual(head("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")?.expectsContinue, true)
    }

    func testPipelinedHeadsParseOneAtATime() {
        let two = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"
        guard case let .head(first, length) = parse(two) else { return XCTFail() }
        XCTAssertEqual(first.path, "/a")
        let rest = String(decoding: Array(two.utf8).dropFirst(length), as: UTF8.self)
        guard case let .head(second, _) = parse(rest) else { return XCTFail() }
        XCTAssertEqual(second.path, "/b")
    }
}

final class ChunkedDecoderTests: XCTestCase {
    private func decode(_ pieces: [String], limits: HTTPLimits = HTTPLimits()) -> (ChunkedDecoder.Progress, String) {
        var decoder = ChunkedDecoder(limits: limits)
        var pending: [UInt8] = []
        var last = ChunkedDecoder.Progress.needMore(consumed: 0)
        for piece in pieces {
            pending += Array(piece.utf8)
            last = pending.withUnsafeBufferPointer { decoder.decode($0) }
            switch last {
            case let .needMore(consumed): pending.removeFirst(consumed)
            case .done, .failure: return (last, String(decoding: decoder.body, as: UTF8.self))
            }
        }
        return (last, String(decoding: decoder.body, as: UTF8.self))
    }

    func testChunksAcrossReadBoundaries() {
        let whole = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n"
        let (progress, body) = decode(whole.map { String($0) })
        XCTAssertEqual(progress, .done(consumed: 2))  // the final CRLF, which arrived a byte at a time
        XCTAssertEqual(body, "Wikipedia in\r\n\r\nchunks.")
        let (allAtOnce, same) = decode([whole])
        XCTAssertEqual(allAtOnce, .done(consumed: whole.utf8.count))
        XCTAssertEqual(same, body)
    }

    func testMalformedChunks() {
        for bad in ["x\r\n", "\r\n", "4\nWiki\r\n", "4\r\nWikiXX", "-1\r\n", "1234567890abcdef1\r\n", "4 garbage\u{1}\r\n"] {
            guard case let .failure(error) = decode([bad]).0 else { return XCTFail("\(bad.debugDescription) accepted") }
            XCTAssertEqual(error.status, 400, bad.debugDescription)
        }
        guard case let .failure(folded) = decode(["0\r\nA: 1\r\n folded\r\n\r\n"]).0 else { return XCTFail() }
        XCTAssertEqual(folded.status, 400)
    }

    func testBodyAndTrailerLimits() {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 8
        guard case let .failure(big) = decode(["5\r\nhello\r\n4\r\n"], limits: limits).0 else { return XCTFail() }
        XCTAssertEqual(big.status, 413)
        guard case let .failure(trailer) = decode(["0\r\n" + String(repeating: "T: x\r\n", count: 1000)]).0 else { return XCTFail() }
        XCTAssertEqual(trailer.status, 431)
        guard case let .failure(line) = decode([String(repeating: "1", count: 2000)]).0 else { return XCTFail() }
        XCTAssertEqual(line.status, 400)
    }
}
