/// A certificate the development CA will not issue, and why.
public struct CertificateRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The common name asked for.
    public let commonName: String
    /// The rule the request breaks.
    public let reason: String

    /// "certificate for <name>: <reason>".
    public var description: String { "certificate for \(commonName): \(reason)" }
}
