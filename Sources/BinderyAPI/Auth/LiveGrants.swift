import BinderyKernel
import Foundation
import Synchronization

/// The grants in force: the role map file (`roles.json`, written by `bindery pki
/// issue-client`) is re-read whenever it changes on disk, so granting or revoking a role
/// applies to the next look (`current`: per request, or once per event-loop wakeup for the
/// reads a loop answers itself, `BinderyTransport.grants(onLoop:)`) without a restart. The config file's grants win. A file
/// that stops parsing keeps the last good grants and is logged once per change.
///
/// A change is seen by the file's stamp (device, inode, size, modification and change times),
/// except within a clock tick: file times come from the kernel's coarse clock, so a rewrite in
/// place of the same size in the tick of the last change keeps the stamp (an identity swapped
/// for another of the same length). Until the file was last read `settleMargin` after its last
/// change, each look reads its bytes again, as git treats a "racily clean" index entry.
package final class LiveGrants: Sendable {
    private struct Stamp: Equatable {
        var device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = -1
        /// Modification and status change times, in nanoseconds since the epoch.
        var modified: Int64 = 0, changed: Int64 = 0
    }

    /// What a read of the file found.
    private enum Contents: Equatable {
        case missing
        case unreadable(String)
        case bytes([UInt8])
    }

    private struct Cache {
        var stamp = Stamp()
        var contents = Contents.missing
        var merged = RoleMap()
        /// Whether the stamp alone tells the next change: the file was read `settleMargin`
        /// after its last change (status change time), so any later change gets a later time.
        var isSettled = false
    }

    /// How long after a change a read must come for the stamp to be trusted: well past the
    /// kernel's tick (1–10 ms) and a one-second timestamp granularity.
    static let settleMargin: Int64 = 2_000_000_000

    private let path: String?
    private let configured: RoleMap
    private let log: @Sendable (String) -> Void
    private let changed: @Sendable (_ before: RoleMap, _ after: RoleMap) -> Void
    private let cache = Mutex(Cache())
    /// Held by the one caller reloading the file.
    private let reloading = NSLock()
    /// File times are rounded down to this many nanoseconds (1: as the kernel gives them).
    private let timeGranularity: Int64

    /// Grants from the file at `path` (none: only `configured`) merged with `configured` (which
    /// win). `changed` hears of every reload that changed the grants in force (to audit it).
    /// `timeGranularity` (tests) rounds file times down, as a file system with coarser times
    /// (one second on some) keeps them.
    package init(path: String?, configured: RoleMap, log: @escaping @Sendable (String) -> Void,
                 changed: @escaping @Sendable (_ before: RoleMap, _ after: RoleMap) -> Void = { _, _ in },
                 timeGranularity: Int64 = 1) throws {
        self.path = path
        self.timeGranularity = max(timeGranularity, 1)
        self.configured = configured
        self.log = log
        self.changed = changed
        guard let path else {
            cache.withLock { $0.merged = configured }
            return
        }
        // Stamped before reading, as `current` does: a change landing between the two is
        // seen at the first request (stamped after, it would pass for the old contents).
        let stamp = stamp(of: path)
        let readAt = Self.wallClock()
        let contents = Self.read(path)
        let initial = try Self.grants(in: contents, at: path)
        cache.withLock {
            $0 = Cache(stamp: stamp, contents: contents, merged: Self.merge(initial, configured),
                       isSettled: Self.isSettled(stamp, readAt: readAt))
        }
    }

    /// The grants now.
    package func current() -> RoleMap {
        guard let path else { return configured }
        if let unchanged = settledGrants(at: stamp(of: path)) { return unchanged }
        return reloading.withLock { reload(path) }
    }

    /// Stats, reads and installs the file, one caller at a time (`reloading`): a slower reload
    /// never installs older contents over a newer one's, nor tells `changed` of a change back
    /// and forth (which would audit a grant that never was). Stamped again under the lock, so
    /// a change made before this look began is read.
    private func reload(_ path: String) -> RoleMap {
        let stamp = stamp(of: path)
        if let unchanged = settledGrants(at: stamp) { return unchanged }
        let readAt = Self.wallClock()
        let contents = Self.read(path)
        let isSettled = Self.isSettled(stamp, readAt: readAt)
        // The bytes last read (a changed stamp, or a look within the tick of the last change).
        if let same = cache.withLock({ cache -> RoleMap? in
            guard cache.contents == contents else { return nil }
            cache.stamp = stamp
            cache.isSettled = isSettled
            return cache.merged
        }) {
            return same
        }
        var merged: RoleMap?
        do {
            merged = Self.merge(try Self.grants(in: contents, at: path), configured)
            log("role grants reloaded from \(path)")
        } catch {
            log("role grants in \(path) not reloaded, keeping the previous ones: \(error)")
        }
        let (before, after) = cache.withLock { cache -> (RoleMap, RoleMap) in
            let before = cache.merged
            cache.stamp = stamp
            cache.contents = contents
            cache.isSettled = isSettled
            if let merged { cache.merged = merged }
            return (before, cache.merged)
        }
        if before != after { changed(before, after) }
        return after
    }

    /// The grants in the cache when the file was last read settled and still has `stamp`.
    private func settledGrants(at stamp: Stamp) -> RoleMap? {
        cache.withLock { $0.isSettled && $0.stamp == stamp ? $0.merged : nil }
    }

    private static func merge(_ file: RoleMap, _ configured: RoleMap) -> RoleMap {
        RoleMap(file.roles.merging(configured.roles) { _, configured in configured })
    }

    /// The grants `contents` hold: none for a missing file.
    private static func grants(in contents: Contents, at path: String) throws -> RoleMap {
        switch contents {
        case .missing: return RoleMap()
        case let .unreadable(reason): throw RoleMapError(path: path, reason: reason)
        case let .bytes(bytes): return try RoleMap.parse(Data(bytes), from: path)
        }
    }

    private static func read(_ path: String) -> Contents {
        switch LinuxSyscalls().readFile(path) {
        case let .success(bytes): return .bytes(bytes)
        case let .failure(error): return error.code == ENOENT ? .missing : .unreadable("reading it failed: \(error)")
        }
    }

    /// By the status change time alone: the kernel sets it at every change, from its own clock,
    /// where a modification time can be set to anything (`touch -d`, `cp -p`), even the future.
    private static func isSettled(_ stamp: Stamp, readAt: Int64) -> Bool {
        readAt - stamp.changed >= settleMargin
    }

    private static func wallClock() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    private func stamp(of path: String) -> Stamp {
        var info = stat()
        guard stat(path, &info) == 0 else { return Stamp() }
        func nanoseconds(_ time: timespec) -> Int64 {
            let exact = Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
            return exact - exact % timeGranularity
        }
        return Stamp(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                     modified: nanoseconds(info.st_mtim), changed: nanoseconds(info.st_ctim))
    }
}
