/// Why a request was refused before it reached a handler: the status to answer and the rule broken.
public struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// 400, 413, 414, 431, 501 or 505.
    public let status: Int
    /// The rule, e.g. "both Content-Length and Transfer-Encoding".
    public let reason: String

    /// An error from its status and reason.
    public init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status): \(reason)" }
}
