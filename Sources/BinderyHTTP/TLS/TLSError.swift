import COpenSSL

/// A TLS failure, naming the OpenSSL call and OpenSSL's own reason.
public struct TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The OpenSSL call (`SSL_CTX_use_certificate_chain_file`, `SSL_do_handshake`).
    public let call: String
    /// OpenSSL's error queue, joined, or the errno.
    public let reason: String

    /// An error from its parts.
    public init(call: String, reason: String) {
        self.call = call
        self.reason = reason
    }

    public var description: String { "\(call): \(reason)" }

    /// Drains OpenSSL's error queue for this thread into an error about `call`.
    static func drain(_ call: String, fallback: String = "no reason given") -> TLSError {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return TLSError(call: call, reason: reasons.isEmpty ? fallback : reasons.joined(separator: "; "))
    }
}
