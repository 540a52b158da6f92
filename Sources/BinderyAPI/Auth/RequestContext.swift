import BinderyHTTP
import BinderyStore

/// Who is asking, for the handler running now: set by the transport around each request.
struct RequestContext: Sendable {
    /// The verified caller.
    var peer: PeerInfo
    /// The caller's role, if the role map grants one.
    var role: Role?
    /// `X-Request-Id`, echoed or generated.
    var requestID: String

    /// The context of the request being handled.
    @TaskLocal static var current: RequestContext?

    /// The caller as the audit history records it.
    var actor: AuditActor { AuditActor(identity: peer.identity, role: role?.rawValue, remoteAddress: peer.remoteAddress) }
}
