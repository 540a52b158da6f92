import Synchronization
import COpenSSL

/// An `SSL_CTX` for the server: TLS 1.2+, intermediate ciphers and groups, no renegotiation or
/// compression, rotating session tickets, and required client certificates. Built whole
/// from files or not at all, so a reload with a bad file keeps the old context.
public final class TLSContext: @unchecked Sendable {
    /// The OpenSSL context; freed in `deinit` (connections hold their own reference).
    let context: OpaquePointer
    /// The configuration it was built from.
    public let configuration: TLSConfiguration
    /// Which build this is: a reload makes a context with a higher number.
    let generation = TLSContext.nextGeneration()

    private static let generations = Mutex(0)
    private static func nextGeneration() -> Int { generations.withLock { $0 += 1; return $0 } }

    /// Loads and checks everything in `configuration`.
    public init(_ configuration: TLSConfiguration) throws {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw TLSError.drain("SSL_CTX_new") }
        self.context = context
        self.configuration = configuration
        func check(_ ok: Bool, _ call: String) throws { if !ok { throw TLSError.drain(call) } }
        try check(bindery_tls_configure_server(context) == 1, "SSL_CTX_set_min_proto_version")
        try check(SSL_CTX_set_cipher_list(context, configuration.cipherList) == 1, "SSL_CTX_set_cipher_list")
        try check(bindery_tls_set_groups(context, configuration.groups) == 1, "SSL_CTX_set1_groups_list(\(configuration.groups))")
        try check(SSL_CTX_use_certificate_chain_file(context, configuration.certificatePath) == 1,
                  "SSL_CTX_use_certificate_chain_file(\(configuration.certificatePath))")
        try check(SSL_CTX_use_PrivateKey_file(context, configuration.privateKeyPath, SSL_FILETYPE_PEM) == 1,
                  "SSL_CTX_use_PrivateKey_file(\(configuration.privateKeyPath))")
        try check(SSL_CTX_check_private_key(context) == 1, "SSL_CTX_check_private_key")
        try check(SSL_CTX_load_verify_locations(context, configuration.clientCABundlePath, nil) == 1,
                  "SSL_CTX_load_verify_locations(\(configuration.clientCABundlePath))")
        if let names = SSL_load_client_CA_file(configuration.clientCABundlePath) {
            SSL_CTX_set_client_CA_list(context, names)
        }
        if let crl = configuration.crlPath {
            try check(bindery_tls_load_crl(context, crl) == 1, "X509_load_crl_file(\(crl))")
        }
        bindery_tls_require_client_certificate(context)
        // Resumption with client verification needs a session id context, or OpenSSL aborts
        // the resumed handshake with an internal-error alert.
        let sessionContext = Array("bindery".utf8)
        try check(SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count)) == 1, "SSL_CTX_set_session_id_context")
        try check(bindery_tls_enable_rotating_tickets(context) == 1, "SSL_CTX_set_tlsext_ticket_key_evp_cb")
    }

    deinit { SSL_CTX_free(context) }

    /// Starts a new session-ticket key; tickets under the previous key still resume once.
    public static func rotateTicketKeys() {
        _ = bindery_tls_rotate_ticket_keys()
    }
}
