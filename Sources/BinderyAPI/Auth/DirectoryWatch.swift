import Glibc
import Synchronization

/// Whether anything in a directory (and any it follows) changed since the last look: an
/// inotify watch, read without blocking. The kernel queues an event inside the syscall that
/// makes the change, so a look after that syscall returned sees it. Looking costs one `read`
/// that fails with EAGAIN when nothing changed, where a `stat` of a file walks its whole path
/// (3.6% of a `GET /v1/vms/{id}`'s CPU, for the roles file).
final class DirectoryWatch: Sendable {
    /// The inotify descriptor; -1 when no watch could be set up.
    private let descriptor: Int32
    /// The watch on the main directory.
    private let main: Int32
    /// Set once the main directory is gone, moved or its watch dropped: every look says "changed".
    private let lost = Atomic<Bool>(false)

    /// Everything that can change what a path in the directory names: written, created,
    /// removed, renamed in or out (a symlink swapped, a file replaced by rename), attributes.
    private static let events = UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
                                       | IN_DELETE_SELF | IN_MOVE_SELF)
    /// Events that mean a watch no longer covers its directory.
    private static let endings = UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)

    /// Watches `directory`; `failure` hears why when that cannot be set up (every look then
    /// says "changed", which costs what not watching would).
    init(directory: String, failure: (String) -> Void) {
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else {
            failure("inotify_init1: errno \(errno)")
            (self.descriptor, main) = (-1, -1)
            return
        }
        let main = inotify_add_watch(descriptor, directory, Self.events)
        guard main >= 0 else {
            failure("inotify_add_watch \(directory): errno \(errno)")
            close(descriptor)
            (self.descriptor, self.main) = (-1, -1)
            return
        }
        (self.descriptor, self.main) = (descriptor, main)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Also watches `directory` (where a symlink in the main one points), as long as it exists:
    /// its going away is a change, not the end of the watch. Watching it twice is watching it once.
    func follow(_ directory: String) {
        guard descriptor >= 0 else { return }
        _ = inotify_add_watch(descriptor, directory, Self.events)
    }

    /// Whether anything changed since the last look (by any caller), or cannot be known.
    func changed() -> Bool {
        guard descriptor >= 0, !lost.load(ordering: .acquiring) else { return true }
        var changed = false
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: MemoryLayout<inotify_event>.alignment) { buffer in
            while true {
                let count = read(descriptor, buffer.baseAddress, buffer.count)
                guard count > 0 else { break }  // EAGAIN: nothing (more) queued
                changed = true  // an overflow (events dropped) included
                var offset = 0
                while offset + MemoryLayout<inotify_event>.size <= count {
                    let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                    if event.wd == main && event.mask & Self.endings != 0 { lost.store(true, ordering: .releasing) }
                    offset += MemoryLayout<inotify_event>.size + Int(event.len)
                }
            }
        }
        return changed
    }
}
