import CBinderySockets
import Foundation
import Glibc

/// The service manager's notification socket (`sd_notify(3)`): one datagram of
/// `KEY=VALUE` lines to `$NOTIFY_SOCKET`, descriptors attached as SCM_RIGHTS for the fd
/// store. No libsystemd: the protocol is this datagram. Without `NOTIFY_SOCKET` every call
/// does nothing, so the daemon runs the same under systemd, another manager, or none.
public struct ServiceNotifier: Sendable {
    /// The socket path (`@` first: the abstract namespace), nil when there is none.
    public let socketPath: String?
    /// How often the manager wants `WATCHDOG=1` at the latest, when it wants it from this process.
    public let watchdogInterval: Duration?

    /// A failed notification, with its errno.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What was sent.
        public var message: String
        /// errno.
        public var errno: Int32
        /// The message and the errno's text.
        public var description: String { "sd_notify \(message.split(separator: "\n").joined(separator: " ")): \(String(cString: strerror(errno)))" }
    }

    /// From the environment: `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.hasPrefix("/") || $0.hasPrefix("@") ? $0 : nil }
        socketPath = path
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0,
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true {
            watchdogInterval = .microseconds(Int64(usec))
        } else {
            watchdogInterval = nil
        }
    }

    /// True when a service manager listens.
    public var isEnabled: Bool { socketPath != nil }

    /// Sends `assignments` (e.g. `["READY=1", "STATUS=serving"]`) with `descriptors` attached.
    public func notify(_ assignments: [String], descriptors: [Int32] = []) throws(Failure) {
        guard let socketPath else { return }
        let message = assignments.joined(separator: "\n")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(message: message, errno: errno) }
        defer { Glibc.close(fd) }
        let bytes = Array(message.utf8)
        let sent = bytes.withUnsafeBytes { data in
            descriptors.withUnsafeBufferPointer { fds in
                bindery_send_with_fds(fd, socketPath, data.baseAddress, data.count, fds.baseAddress, Int32(fds.count))
            }
        }
        guard sent == bytes.count else { throw Failure(message: message, errno: sent < 0 ? errno : EMSGSIZE) }
    }

    /// `READY=1` with a status line.
    public func ready(status: String) throws(Failure) { try notify(["READY=1", "STATUS=" + status]) }

    /// `STOPPING=1`.
    public func stopping() throws(Failure) { try notify(["STOPPING=1", "STATUS=stopping"]) }

    /// `WATCHDOG=1`: the service is alive.
    public func watchdog() throws(Failure) { try notify(["WATCHDOG=1"]) }

    /// Hands `descriptors` to the manager's fd store under `name` (`FDSTORE=1`, `FDNAME=`).
    public func store(_ descriptors: [Int32], name: String) throws(Failure) {
        try notify(["FDSTORE=1", "FDNAME=" + name], descriptors: descriptors)
    }

    /// Drops the fd store's descriptors named `name` (`FDSTOREREMOVE=1`).
    public func removeStored(name: String) throws(Failure) { try notify(["FDSTOREREMOVE=1", "FDNAME=" + name]) }
}

/// Descriptors the service manager passed at start (`sd_listen_fds_with_names(3)`):
/// `LISTEN_FDS` of them from fd 3, named by `LISTEN_FDNAMES`, meant for this process when
/// `LISTEN_PID` is its pid. Each is made close-on-exec.
public enum ListenedDescriptors {
    /// The descriptors and their names (`unknown` where none was given).
    public static func take(environment: [String: String] = ProcessInfo.processInfo.environment) -> [(name: String, fd: Int32)] {
        guard let count = environment["LISTEN_FDS"].flatMap(Int.init), count > 0, count <= 4096,
              environment["LISTEN_PID"].flatMap(Int32.init) == getpid() else { return [] }
        let names = environment["LISTEN_FDNAMES"].map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        return (0..<count).map { index in
            let fd = Int32(3 + index)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            return (index < names.count && !names[index].isEmpty ? names[index] : "unknown", fd)
        }
    }
}
