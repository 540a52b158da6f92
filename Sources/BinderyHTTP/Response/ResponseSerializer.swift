import Glibc

/// Writes responses as HTTP/1.1 bytes, with `Date` (cached per second), `Server`,
/// `Content-Length` and `Connection`.
struct ResponseSerializer {
    let serverName: String
    private var cachedSecond = 0
    private var cachedDate: [UInt8] = []

    init(serverName: String) { self.serverName = serverName }

    /// Appends `response` to `output`. `includeBody` is false for HEAD; `close` adds
    /// `Connection: close`; `keepAlive10` adds `Connection: keep-alive` for HTTP/1.0 clients.
    mutating func append(_ response: HTTPResponse, to output: inout [UInt8], includeBody: Bool, close: Bool, keepAlive10: Bool) {
        appendHead(response, to: &output)
        let bodyless = response.status == 204 || response.status == 304 || (100..<200).contains(response.status)
        if !bodyless {
            output.append(contentsOf: "Content-Length: ".utf8)
            Self.appendDecimal(response.body.count, to: &output)
            output.append(contentsOf: Self.crlf)
        }
        if close { output.append(contentsOf: "Connection: close\r\n".utf8) } else if keepAlive10 { output.append(contentsOf: "Connection: keep-alive\r\n".utf8) }
        output.append(contentsOf: Self.crlf)
        if includeBody && !bodyless { output.append(contentsOf: response.body) }
    }

    /// Appends the head of a streamed response: `Transfer-Encoding: chunked`, or for an HTTP/1.0
    /// client (no chunked coding) a body that ends when the connection closes.
    mutating func appendStreamingHead(_ response: HTTPResponse, to output: inout [UInt8], chunked: Bool, close: Bool) {
        appendHead(response, to: &output)
        if chunked { output.append(contentsOf: "Transfer-Encoding: chunked\r\n".utf8) }
        if close { output.append(contentsOf: "Connection: close\r\n".utf8) }
        output.append(contentsOf: Self.crlf)
        if !response.body.isEmpty { Self.appendPiece(response.body, to: &output, chunked: chunked) }
    }

    /// The status line, `Date`, `Server` and the response's own headers, written as bytes
    /// (built by string interpolation and concatenation instead, 3% of a GET's CPU).
    private mutating func appendHead(_ response: HTTPResponse, to output: inout [UInt8]) {
        output.append(contentsOf: "HTTP/1.1 ".utf8)
        Self.appendDecimal(response.status, to: &output)
        output.append(UInt8(ascii: " "))
        output.append(contentsOf: HTTPStatus.reason(response.status).utf8)
        output.append(contentsOf: "\r\nDate: ".utf8)
        refreshDate()
        output.append(contentsOf: cachedDate)
        output.append(contentsOf: "\r\nServer: ".utf8)
        output.append(contentsOf: serverName.utf8)
        output.append(contentsOf: Self.crlf)
        for (name, value) in response.headers {
            output.append(contentsOf: name.utf8)
            output.append(contentsOf: ": ".utf8)
            output.append(contentsOf: value.utf8)
            output.append(contentsOf: Self.crlf)
        }
    }

    private static let crlf: [UInt8] = [13, 10]

    /// Appends `value` (not negative) in decimal.
    private static func appendDecimal(_ value: Int, to output: inout [UInt8]) {
        guard value >= 10 else { return output.append(UInt8(ascii: "0") + UInt8(max(value, 0))) }
        appendDecimal(value / 10, to: &output)
        output.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// Appends one piece of a streamed body, framed as a chunk when `chunked`.
    static func appendPiece(_ piece: [UInt8], to output: inout [UInt8], chunked: Bool) {
        guard !piece.isEmpty else { return }
        if chunked { output.append(contentsOf: (String(piece.count, radix: 16) + "\r\n").utf8) }
        output.append(contentsOf: piece)
        if chunked { output.append(contentsOf: [13, 10]) }
    }

    /// The last chunk (no trailers).
    static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    /// Keeps `cachedDate` the IMF-fixdate of now, recomputed once a second.
    private mutating func refreshDate() {
        var now = time(nil)
        guard now != cachedSecond else { return }
        cachedSecond = now
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        cachedDate = buffer.prefix(count).map { UInt8(bitPattern: $0) }
    }
}
