/// Parses a request line and header section (RFC 9112) from the front of a buffer, strictly:
/// anything that could be read two ways (smuggling) is refused, and every limit is checked
/// before more bytes are accepted.
public enum HTTPHeadParser {
    /// The outcome of one parse attempt.
    public enum Result: Equatable {
        /// More bytes are needed; nothing is wrong yet.
        case incomplete
        /// A head, and how many bytes it took (through the empty line).
        case head(HTTPRequestHead, length: Int)
        /// The request must be refused with this status.
        case failure(HTTPParseError)
    }

    static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")

    /// RFC 9110 `tchar`.
    static let tokenTable: [Bool] = (0..<256).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(UInt8(byte))
        }
    }

    /// Parses the head at the start of `bytes`.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, limits: HTTPLimits = HTTPLimits()) -> Result {
        var start = 0
        // RFC 9112 §2.2: ignore empty lines before the request line (bounded by the line limit).
        while start + 1 < bytes.count, bytes[start] == cr, bytes[start + 1] == lf, start < limits.maxRequestLine {
            start += 2
        }
        guard let lineEnd = findLF(bytes, from: start, limit: limits.maxRequestLine + 2) else {
            return bytes.count - start > limits.maxRequestLine + 1
                ? .failure(HTTPParseError(414, "request line longer than \(limits.maxRequestLine) bytes")) : .incomplete
        }
        guard lineEnd > start, bytes[lineEnd - 1] == cr else { return .failure(HTTPParseError(400, "request line ends in a bare LF")) }
        if lineEnd - 1 - start > limits.maxRequestLine {
            return .failure(HTTPParseError(414, "request line longer than \(limits.maxRequestLine) bytes"))
        }
        var head: HTTPRequestHead
        switch parseRequestLine(UnsafeBufferPointer(rebasing: bytes[start..<(lineEnd - 1)]), limits: limits) {
        case let .success(parsed): head = parsed
        case let .failure(error): return .failure(error)
        }

        var cursor = lineEnd + 1
        let headerStart = cursor
        while true {
            let budget = limits.maxHeaderBytes - (cursor - headerStart)
            guard let end = findLF(bytes, from: cursor, limit: budget + 2) else {
                return bytes.count - headerStart > limits.maxHeaderBytes
                    ? .failure(HTTPParseError(431, "header section larger than \(limits.maxHeaderBytes) bytes")) : .incomplete
            }
            guard end > cursor, bytes[end - 1] == cr else { return .failure(HTTPParseError(400, "header line ends in a bare LF")) }
            if end - headerStart + 1 > limits.maxHeaderBytes + 2 {
                return .failure(HTTPParseError(431, "header section larger than \(limits.maxHeaderBytes) bytes"))
            }
            if end - 1 == cursor { cursor = end + 1; break }  // the empty line
            if head.headers.count == limits.maxHeaderCount {
                return .failure(HTTPParseError(431, "more than \(limits.maxHeaderCount) header fields"))
            }
            switch parseField(UnsafeBufferPointer(rebasing: bytes[cursor..<(end - 1)])) {
            case let .success(field): head.headers.append(field)
            case let .failure(error): return .failure(error)
            }
            cursor = end + 1
        }
        if let error = applySemantics(&head, limits: limits) { return .failure(error) }
        return .head(head, length: cursor)
    }

    private static func findLF(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, limit: Int) -> Int? {
        let end = min(bytes.count, start + max(limit, 0))
        var index = start
        while index < end {
            if bytes[index] == lf { return index }
            index += 1
        }
        return nil
    }

    /// Any token is a method: one the application does not serve reaches it, so it can answer
    /// 405 with `Allow` (RFC 9110 §15.5.6). Only CONNECT, a proxy's method, is refused here.
    private static func parseRequestLine(_ line: UnsafeBufferPointer<UInt8>,
                                         limits: HTTPLimits) -> Swift.Result<HTTPRequestHead, HTTPParseError> {
        let parts = line.split(separator: space, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            return .failure(HTTPParseError(400, "request line is not METHOD SP TARGET SP VERSION"))
        }
        guard parts[0].allSatisfy({ tokenTable[Int($0)] }) else { return .failure(HTTPParseError(400, "method is not a token")) }
        guard parts[0].count <= limits.maxMethodLength else {
            return .failure(HTTPParseError(501, "method longer than \(limits.maxMethodLength) bytes"))  // RFC 9112 §3
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        let versionBytes = Array(parts[2])
        guard versionBytes.count == 8, versionBytes.starts(with: "HTTP/".utf8), versionBytes[6] == UInt8(ascii: "."),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(versionBytes[5]),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(versionBytes[7]) else {
            return .failure(HTTPParseError(400, "malformed HTTP version"))
        }
        guard versionBytes[5] == UInt8(ascii: "1"), versionBytes[7] <= UInt8(ascii: "1") else {
            return .failure(HTTPParseError(505, "HTTP version \(String(decoding: versionBytes, as: UTF8.self)) is not supported"))
        }
        guard parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "#") }) else {
            return .failure(HTTPParseError(400, "request target has a forbidden character"))
        }
        guard method != "CONNECT" else { return .failure(HTTPParseError(501, "CONNECT is not implemented: this is not a proxy")) }
        let target = String(decoding: parts[1], as: UTF8.self)
        var pathAndQuery: Substring
        if target.hasPrefix("/") {
            pathAndQuery = Substring(target)
        } else if target == "*" && method == "OPTIONS" {
            pathAndQuery = "*"
        } else if let scheme = ["http://", "https://"].first(where: { target.lowercased().hasPrefix($0) }) {
            let rest = target.dropFirst(scheme.count)
            guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { pathAndQuery = "/"; return .success(makeHead(method, target, "/", versionBytes[7])) }
            guard rest.startIndex < slash else { return .failure(HTTPParseError(400, "absolute-form target without an authority")) }
            pathAndQuery = rest[slash...]
            if pathAndQuery.first == "?" { pathAndQuery = "/" + pathAndQuery }
        } else {
            return .failure(HTTPParseError(400, "request target is neither origin-form nor absolute-form"))
        }
        return .success(makeHead(method, target, pathAndQuery, versionBytes[7]))
    }

    /// The head of a request for `pathAndQuery` (printable ASCII, checked above). Split on its
    /// bytes: searched by `Character`, the `?` cost a GET a microsecond of grapheme breaking.
    private static func makeHead(_ method: String, _ target: String, _ pathAndQuery: Substring, _ minor: UInt8) -> HTTPRequestHead {
        let bytes = pathAndQuery.utf8
        let question = bytes.firstIndex(of: UInt8(ascii: "?"))
        return HTTPRequestHead(
            method: method, target: target,
            path: String(question.map { Substring(bytes[..<$0]) } ?? pathAndQuery),
            query: question.map { Substring(bytes[bytes.index(after: $0)...]) }.map(String.init),
            minorVersion: Int(minor - UInt8(ascii: "0")), headers: [], framing: .none)
    }

    private static func parseField(_ line: UnsafeBufferPointer<UInt8>) -> Swift.Result<(name: String, value: String), HTTPParseError> {
        guard let first = line.first, first != space, first != tab else {
            return .failure(HTTPParseError(400, "obsolete line folding (a header line starts with white space)"))
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            return .failure(HTTPParseError(400, "header line without a field name and colon"))
        }
        for byte in line[..<colon] where !tokenTable[Int(byte)] {
            return .failure(HTTPParseError(400, byte == space || byte == tab
                ? "white space between a field name and its colon" : "invalid character in a field name"))
        }
        var valueStart = colon + 1, valueEnd = line.count
        while valueStart < valueEnd, line[valueStart] == space || line[valueStart] == tab { valueStart += 1 }
        while valueEnd > valueStart, line[valueEnd - 1] == space || line[valueEnd - 1] == tab { valueEnd -= 1 }
        for byte in line[valueStart..<valueEnd] where (byte < 0x20 && byte != tab) || byte == 0x7f {
            return .failure(HTTPParseError(400, byte == 0 ? "NUL in a field value"
                : byte == cr || byte == lf ? "CR or LF in a field value" : "control character in a field value"))
        }
        return .success((String(decoding: line[..<colon], as: UTF8.self), String(decoding: line[valueStart..<valueEnd], as: UTF8.self)))
    }

    /// Host, Content-Length and Transfer-Encoding rules; sets the body framing.
    private static func applySemantics(_ head: inout HTTPRequestHead, limits: HTTPLimits) -> HTTPParseError? {
        let hosts = head.headers(named: "host")
        if head.minorVersion == 1 && hosts.count != 1 {
            return HTTPParseError(400, hosts.isEmpty ? "HTTP/1.1 request without Host" : "more than one Host")
        }
        if hosts.count > 1 { return HTTPParseError(400, "more than one Host") }
        let lengths = head.headers(named: "content-length")
        let codings = head.headers(named: "transfer-encoding")
            .flatMap { $0.split(separator: ",").map { $0.trimmingSpaces.lowercased() } }
        if !codings.isEmpty {
            if !lengths.isEmpty { return HTTPParseError(400, "both Content-Length and Transfer-Encoding") }
            if head.minorVersion == 0 { return HTTPParseError(400, "Transfer-Encoding in an HTTP/1.0 request") }
            guard codings.last == "chunked" else { return HTTPParseError(400, "Transfer-Encoding does not end in chunked") }
            if codings.dropLast().contains("chunked") { return HTTPParseError(400, "chunked applied more than once") }
            if let unknown = codings.first(where: { $0 != "chunked" }) {
                return HTTPParseError(501, "transfer coding \(unknown) is not implemented")
            }
            head.framing = .chunked
            return nil
        }
        guard let length = lengths.first else { return nil }
        if lengths.count > 1 { return HTTPParseError(400, "duplicate Content-Length") }
        guard !length.isEmpty, length.utf8.count <= 18, length.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let value = Int(length) else {
            return HTTPParseError(400, "invalid Content-Length \"\(length.prefix(32))\"")
        }
        if value > limits.maxBodyBytes { return HTTPParseError(413, "body of \(value) bytes exceeds the \(limits.maxBodyBytes)-byte limit") }
        head.framing = value == 0 ? .none : .contentLength(value)
        return nil
    }
}
