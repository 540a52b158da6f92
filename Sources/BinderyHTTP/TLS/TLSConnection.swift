import COpenSSL
import Glibc

/// One TLS session over a non-blocking socket. Owns its `SSL*`. Every call clears the
/// error queue first and maps `SSL_get_error` through `outcome(of:call:)`.
final class TLSConnection {
    /// What a non-blocking TLS call did.
    enum Outcome: Equatable {
        /// It did this many bytes of work (0 for handshake/shutdown: done).
        case done(Int)
        /// Call again when the socket is readable.
        case wantRead
        /// Call again when the socket is writable.
        case wantWrite
        /// The peer closed the TLS session cleanly.
        case closed
        /// It failed; the connection is over.
        case failed(TLSError)
    }

    private let ssl: OpaquePointer

    /// A server-side session on `fd` under `context`.
    init(context: TLSContext, fd: Int32) throws {
        ERR_clear_error()
        guard let ssl = SSL_new(context.context) else { throw TLSError.drain("SSL_new") }
        self.ssl = ssl
        guard SSL_set_fd(ssl, fd) == 1 else { throw TLSError.drain("SSL_set_fd") }
        SSL_set_accept_state(ssl)
    }

    deinit { SSL_free(ssl) }

    func handshake() -> Outcome {
        ERR_clear_error()
        return outcome(of: SSL_do_handshake(ssl), call: "SSL_do_handshake")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Outcome {
        ERR_clear_error()
        var count = 0
        let result = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count)
        return result == 1 ? .done(count) : outcome(of: result, call: "SSL_read_ex")
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        ERR_clear_error()
        var count = 0
        let result = SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &count)
        return result == 1 ? .done(count) : outcome(of: result, call: "SSL_write_ex")
    }

    /// Sends close_notify (does not wait for the peer's).
    func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
    }

    /// True while OpenSSL holds bytes it took from the socket and `read` has not returned yet
    /// (decrypted, or records read ahead): epoll will not say so.
    var hasBufferedInput: Bool { SSL_has_pending(ssl) == 1 }

    /// The verified client's identity and certificate fingerprint.
    func peerIdentity() -> (identity: String, kind: PeerInfo.IdentityKind, fingerprint: String)? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        var buffer = [CChar](repeating: 0, count: 1024)
        let kind = bindery_certificate_identity(certificate, &buffer, buffer.count)
        guard kind != BINDERY_IDENTITY_NONE else { return nil }
        let identity = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        X509_digest(certificate, EVP_sha256(), &digest, &length)
        let hex = Array("0123456789abcdef")
        let fingerprint = digest.prefix(Int(length)).map { String([hex[Int($0 >> 4)], hex[Int($0 & 0xf)]]) }.joined(separator: ":")
        let identityKind: PeerInfo.IdentityKind = kind == BINDERY_IDENTITY_URI ? .uri : kind == BINDERY_IDENTITY_DNS ? .dns : .cn
        return (identity, identityKind, fingerprint)
    }

    /// True when a CRL in `context` (the one in force now, not necessarily the one this
    /// connection was accepted with) lists the peer's certificate.
    func isPeerRevoked(by context: TLSContext) -> Bool { bindery_tls_peer_revoked(context.context, ssl) == 1 }

    /// The negotiated protocol, e.g. `TLSv1.3`.
    var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// True when this session was resumed from a ticket.
    var isResumed: Bool { SSL_session_reused(ssl) == 1 }

    /// The one place `SSL_get_error` is interpreted.
    private func outcome(of result: Int32, call: String) -> Outcome {
        if result == 1 { return .done(0) }
        let savedErrno = errno
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let error = TLSError.drain(call, fallback: savedErrno == 0 ? "peer closed the connection" : "errno \(savedErrno)")
            return savedErrno == 0 && error.reason == "peer closed the connection" ? .closed : .failed(error)
        case SSL_ERROR_SSL:
            return .failed(TLSError.drain(call))
        case let other:
            return .failed(TLSError.drain(call, fallback: "SSL_get_error \(other)"))
        }
    }
}
