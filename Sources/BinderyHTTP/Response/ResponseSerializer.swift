import Glibc

/// Writes responses as HTTP/1.1 bytes, with `Date` (cached per second), `Server`,
/// `Content-Length` and `Connection`.
struct ResponseSerializer {
    let serverName: String
    private var cachedSecond = 0
    private var cachedDate = ""

    init(serverName: String) { self.serverName = serverName }

    /// Appends `response` to `output`. `includeBody` is false for HEAD; `close` adds
    /// `Connection: close`; `keepAlive10` adds `Connection: keep-alive` for HTTP/1.0 clients.
    mutating func append(_ response: HTTPResponse, to output: inout [UInt8], includeBody: Bool, close: Bool, keepAlive10: Bool) {
        var head = "HTTP/1.1 \(response.status) \(HTTPStatus.reason(response.status))\r\nDate: \(date())\r\nServer: \(serverName)\r\n"
        for (name, value) in response.headers {
            head += name + ": " + value + "\r\n"
        }
        let bodyless = response.status == 204 || response.status == 304 || (100..<200).contains(response.status)
        if !bodyless { head += "Content-Length: \(response.body.count)\r\n" }
        if close { head += "Connection: close\r\n" } else if keepAlive10 { head += "Connection: keep-alive\r\n" }
        head += "\r\n"
        output.append(contentsOf: head.utf8)
        if includeBody && !bodyless { output.append(contentsOf: response.body) }
    }

    /// Appends the head of a streamed response: `Transfer-Encoding: chunked`, or for an HTTP/1.0
    /// client (no chunked coding) a body that ends when the connection closes.
    mutating func appendStreamingHead(_ response: HTTPResponse, to output: inout [UInt8], chunked: Bool, close: Bool) {
        var head = "HTTP/1.1 \(response.status) \(HTTPStatus.reason(response.status))\r\nDate: \(date())\r\nServer: \(serverName)\r\n"
        for (name, value) in response.headers {
            head += name + ": " + value + "\r\n"
        }
        if chunked { head += "Transfer-Encoding: chunked\r\n" }
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        output.append(contentsOf: head.utf8)
        if !response.body.isEmpty { Self.appendPiece(response.body, to: &output, chunked: chunked) }
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

    /// The IMF-fixdate of now, recomputed once a second.
    private mutating func date() -> String {
        var now = time(nil)
        if now != cachedSecond {
            cachedSecond = now
            var parts = tm()
            gmtime_r(&now, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            cachedDate = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return cachedDate
    }
}
