import BinderyStore
import Glibc

extension AttachmentRepository.Holder {
    /// True while the holder's process runs (`kill(pid, 0)`; EPERM: it runs as another user).
    public var isRunning: Bool { Self.isRunning(pid: pid) }

    /// True when `pid` names a running process.
    public static func isRunning(pid: Int32) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }
}
