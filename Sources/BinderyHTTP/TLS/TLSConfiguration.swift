/// Where the server's certificate, key and the client CA bundle live.
public struct TLSConfiguration: Sendable, Equatable {
    /// PEM certificate chain (leaf first).
    public var certificatePath: String
    /// PEM private key.
    public var privateKeyPath: String
    /// PEM CA bundle that client certificates must chain to.
    public var clientCABundlePath: String
    /// Optional PEM CRL file checked against client certificates.
    public var crlPath: String?
    /// The Mozilla "intermediate" TLS 1.2 cipher list (TLS 1.3 suites are OpenSSL's defaults).
    public var cipherList = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        + "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
    /// The Mozilla "intermediate" key exchange groups, for TLS 1.3 and TLS 1.2 alike
    /// (OpenSSL's defaults would add X448, P-521 and the finite-field groups).
    public var groups = "X25519:P-256:P-384"

    /// A configuration from its files.
    public init(certificatePath: String, privateKeyPath: String, clientCABundlePath: String, crlPath: String? = nil) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.clientCABundlePath = clientCABundlePath
        self.crlPath = crlPath
    }
}
