import Glibc

/// A socket syscall that failed, with its errno.
public struct SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The syscall (`bind`, `listen`, `epoll_ctl`).
    public let call: String
    /// The errno.
    public let errno: Int32
    /// What it was applied to.
    public let subject: String

    /// The error of `call` on `subject`, with the current errno.
    static func last(_ call: String, _ subject: String) -> SocketError {
        SocketError(call: call, errno: Glibc.errno, subject: subject)
    }

    public var description: String { "\(call)(\(subject)) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}
