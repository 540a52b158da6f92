/// Who is calling: the verified client certificate and the peer address.
public struct PeerInfo: Sendable, Equatable {
    /// Which part of the certificate an identity came from.
    public enum IdentityKind: String, Sendable {
        /// A URI subject alternative name (`spiffe://…`).
        case uri
        /// A DNS subject alternative name.
        case dns
        /// The subject common name.
        case cn
    }

    /// First URI SAN, else first DNS SAN, else subject CN.
    public var identity: String
    /// SHA-256 of the certificate (DER), colon-separated hex.
    public var certificateFingerprint: String
    /// `address:port` (`[v6]:port` for IPv6).
    public var remoteAddress: String
    /// Where `identity` came from.
    public var identityKind: IdentityKind = .cn

    /// The identity with its kind (`uri:spiffe://…`, `dns:host`, `cn:name`), so a grant for one
    /// kind can never match a certificate that carries the same text in another field.
    public var namespacedIdentity: String { identityKind.rawValue + ":" + identity }

    /// A caller from its parts.
    public init(identity: String, certificateFingerprint: String, remoteAddress: String, identityKind: IdentityKind = .cn) {
        self.identity = identity
        self.certificateFingerprint = certificateFingerprint
        self.remoteAddress = remoteAddress
        self.identityKind = identityKind
    }
}

/// A complete request: head, body, and the verified caller.
public struct HTTPRequest: Sendable {
    /// Request line and headers.
    public var head: HTTPRequestHead
    /// The body (already bounded by the limits).
    public var body: [UInt8]
    /// The caller.
    public var peer: PeerInfo
    /// The event loop the request arrived on (0..<loops): `respondImmediately` runs on that
    /// loop's thread, so a handler may keep per-loop state (a read connection) by this index.
    public var loop = 0
}

/// A response body produced piece by piece, sent chunked. The server asks for the next piece
/// only once the previous one has nearly left for the socket, so a slow reader slows the
/// producer instead of making the server buffer; if the client goes, the producer's task is
/// cancelled. A thrown error ends the body without its last chunk, so the client sees it cut.
public struct HTTPBodyStream: Sendable {
    /// The next piece, or nil at the end.
    public let next: @Sendable () async throws -> [UInt8]?

    /// A stream that asks `next` for each piece.
    public init(_ next: @escaping @Sendable () async throws -> [UInt8]?) { self.next = next }
}

/// A response. `Content-Length` (or `Transfer-Encoding`), `Date`, `Server` and `Connection`
/// are added by the server.
public struct HTTPResponse: Sendable {
    /// Status code.
    public var status: Int
    /// Header fields.
    public var headers: [(name: String, value: String)]
    /// Body bytes.
    public var body: [UInt8]
    /// A body of unknown length, sent after `body` (normally empty) with chunked framing.
    public var stream: HTTPBodyStream?
    /// Close the connection after this response.
    public var closesConnection: Bool

    /// A response from its parts.
    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = [], stream: HTTPBodyStream? = nil,
                closesConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.stream = stream
        self.closesConnection = closesConnection
    }

    /// A text response.
    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(text.utf8))
    }

    /// An RFC 9457 problem for a request refused before any handler saw it.
    public static func problem(_ status: Int, detail: String, closesConnection: Bool = true) -> HTTPResponse {
        let body = "{\"type\":\"about:blank\",\"title\":\"\(HTTPStatus.reason(status))\",\"status\":\(status),\"detail\":"
            + jsonString(detail) + "}"
        return HTTPResponse(status: status, headers: [("Content-Type", "application/problem+json")], body: Array(body.utf8),
                            closesConnection: closesConnection)
    }

    private static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// What answers requests. `respond` runs as a Swift task, off the event loops; a handler
/// that can answer without waiting implements `respondImmediately` to skip the task hop.
public protocol HTTPHandler: Sendable {
    /// Answers a request; may suspend (database, kernel).
    func respond(to request: HTTPRequest) async -> HTTPResponse
    /// Answers on the event loop without suspending, or nil to use `respond`.
    func respondImmediately(to request: HTTPRequest) -> HTTPResponse?
    /// Event loop `loop` handled everything a wakeup brought (one that brought events: only
    /// those run `respondImmediately`) and is about to wait: what it kept for the requests of
    /// one wakeup (a read snapshot) ends here.
    func loopWillWait(_ loop: Int)
}

extension HTTPHandler {
    /// By default every request takes the async path.
    public func respondImmediately(to request: HTTPRequest) -> HTTPResponse? { nil }
    /// By default nothing is kept between requests.
    public func loopWillWait(_ loop: Int) {}
}
