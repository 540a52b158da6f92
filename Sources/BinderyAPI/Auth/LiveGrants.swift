import Foundation
import Synchronization

/// The grants in force, read for every request: the role map file (`roles.json`, written by
/// `bindery pki issue-client`) is re-read whenever it changes on disk, so granting or revoking
/// a role applies to the next request without a restart. The config file's grants win. A file
/// that stops parsing keeps the last good grants and is logged once per change.
package final class LiveGrants: Sendable {
    private struct Stamp: Equatable {
        var device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = -1, seconds: Int = 0, nanoseconds: Int = 0
    }

    private struct Cache {
        var stamp = Stamp()
        var merged = RoleMap()
    }

    private let path: String?
    private let configured: RoleMap
    private let log: @Sendable (String) -> Void
    private let changed: @Sendable (_ before: RoleMap, _ after: RoleMap) -> Void
    private let cache = Mutex(Cache())

    /// Grants from the file at `path` (none: only `configured`) merged with `configured` (which
    /// win). `changed` hears of every reload that changed the grants in force (to audit it).
    package init(path: String?, configured: RoleMap, log: @escaping @Sendable (String) -> Void,
                 changed: @escaping @Sendable (_ before: RoleMap, _ after: RoleMap) -> Void = { _, _ in }) throws {
        self.path = path
        self.configured = configured
        self.log = log
        self.changed = changed
        // Stamped before reading, as `current` does: a change landing between the two is
        // seen at the first request (stamped after, it would pass for the old contents).
        let stamp = path.map(Self.stamp(of:)) ?? Stamp()
        let initial = try path.map { try RoleMap.load(from: $0) } ?? RoleMap()
        cache.withLock { $0 = Cache(stamp: stamp, merged: Self.merge(initial, configured)) }
    }

    /// The grants now.
    package func current() -> RoleMap {
        guard let path else { return configured }
        let stamp = Self.stamp(of: path)
        if let unchanged = cache.withLock({ $0.stamp == stamp ? $0.merged : nil }) { return unchanged }
        var merged: RoleMap?
        do {
            merged = Self.merge(try RoleMap.load(from: path), configured)
            log("role grants reloaded from \(path)")
        } catch {
            log("role grants in \(path) not reloaded, keeping the previous ones: \(error)")
        }
        let (before, after) = cache.withLock { cache -> (RoleMap, RoleMap) in
            let before = cache.merged
            cache.stamp = stamp
            if let merged { cache.merged = merged }
            return (before, cache.merged)
        }
        if before != after { changed(before, after) }
        return after
    }

    private static func merge(_ file: RoleMap, _ configured: RoleMap) -> RoleMap {
        RoleMap(file.roles.merging(configured.roles) { _, configured in configured })
    }

    private static func stamp(of path: String) -> Stamp {
        var info = stat()
        guard stat(path, &info) == 0 else { return Stamp() }
        return Stamp(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                     seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec)
    }
}
