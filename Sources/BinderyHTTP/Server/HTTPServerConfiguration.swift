/// Everything the server needs to know, with safe defaults.
public struct HTTPServerConfiguration: Sendable {
    /// Addresses to listen on: `127.0.0.1:8443`, `[::1]:8443`, `0.0.0.0:0` (port 0: any free port).
    public var listen: [String]
    /// Certificates and the client CA bundle.
    public var tls: TLSConfiguration
    /// Request size limits.
    public var limits = HTTPLimits()
    /// Event-loop threads (default: one per core).
    public var eventLoops = max(1, System.coreCount)
    /// Most open connections; beyond it a few get a canned 503, the rest are closed at once.
    /// Lowered at start if RLIMIT_NOFILE cannot hold them (`HTTPServer.effectiveMaxConnections`).
    public var maxConnections = 10_000
    /// TLS handshake deadline.
    public var handshakeTimeout: Duration = .seconds(10)
    /// Deadline for a whole header section from its first byte (not reset by each byte).
    public var headerTimeout: Duration = .seconds(10)
    /// Longest silence while a body is arriving.
    public var bodyIdleTimeout: Duration = .seconds(10)
    /// Longest idle time between requests.
    public var keepAliveTimeout: Duration = .seconds(60)
    /// Longest a response may wait for the client to read it.
    public var writeTimeout: Duration = .seconds(10)
    /// Response bytes buffered per connection before the server stops reading from it.
    public var outputBufferLimit = 256 * 1024
    /// How long graceful shutdown lets in-flight requests finish.
    public var shutdownGracePeriod: Duration = .seconds(10)
    /// How often session-ticket keys rotate.
    public var ticketKeyRotation: Duration = .seconds(12 * 3600)
    /// The `Server` header.
    public var serverName = "bindery"

    /// A configuration for `listen` with `tls`.
    public init(listen: [String], tls: TLSConfiguration) {
        self.listen = listen
        self.tls = tls
    }
}

/// Facts about the machine.
public enum System {
    /// Online processors.
    public static var coreCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

#if canImport(Glibc)
import Glibc
#endif
