/// Hard limits on what a client may send. Every one of them is enforced before the bytes
/// past it are read.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request line (414 beyond it).
    public var maxRequestLine = 8 * 1024
    /// Longest method (501 beyond it, RFC 9112 §3); registered methods are at most 17 bytes.
    public var maxMethodLength = 32
    /// Largest header section, request line excluded (431 beyond it).
    public var maxHeaderBytes = 32 * 1024
    /// Most header fields (431 beyond it).
    public var maxHeaderCount = 100
    /// Largest request body (413 beyond it).
    public var maxBodyBytes = 1024 * 1024
    /// Largest chunked trailer section.
    public var maxTrailerBytes = 4 * 1024

    /// The defaults.
    public init() {}
}
