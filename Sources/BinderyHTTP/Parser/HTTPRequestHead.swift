/// A parsed request line and header section.
public struct HTTPRequestHead: Sendable, Equatable {
    /// The method, e.g. `GET`.
    public var method: String
    /// The request target as sent (origin-form, absolute-form or `*`).
    public var target: String
    /// The path (absolute-form targets reduced to their path).
    public var path: String
    /// The query string without `?`, if any.
    public var query: String?
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Header fields in arrival order, names as sent.
    public var headers: [(name: String, value: String)]
    /// How the body is delimited.
    public var framing: BodyFraming

    /// How a request body is delimited.
    public enum BodyFraming: Sendable, Equatable {
        /// No body.
        case none
        /// Exactly this many bytes.
        case contentLength(Int)
        /// Chunked transfer coding.
        case chunked
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }

    /// Every value of header `name` (case-insensitive).
    public func headers(named name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name }.map(\.value)
    }

    /// True when the connection stays open after the response (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool {
        let tokens = headers(named: "connection").flatMap { $0.lowercased().split(separator: ",").map { $0.trimmingSpaces } }
        if tokens.contains("close") { return false }
        return minorVersion == 1 || tokens.contains("keep-alive")
    }

    /// True when the client sent `Expect: 100-continue`.
    public var expectsContinue: Bool {
        header("expect")?.lowercased() == "100-continue"
    }

    public static func == (lhs: HTTPRequestHead, rhs: HTTPRequestHead) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.minorVersion == rhs.minorVersion
            && lhs.framing == rhs.framing && lhs.headers.elementsEqual(rhs.headers) { $0 == $1 }
    }
}

extension Substring {
    var trimmingSpaces: String {
        var slice = self
        while slice.first == " " || slice.first == "\t" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
