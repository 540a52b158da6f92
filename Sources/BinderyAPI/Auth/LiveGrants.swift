import Foundation
import Synchronization

/// The grants in force, read for every request: the role map file (`roles.json`, written by
/// `bindery pki issue-client`) is re-read whenever it changes on disk, so granting or revoking
/// a role applies to the next request without a restart. The config file's grants win. A file
/// that stops parsing keeps the last good grants and is logged once per change. A request looks
/// at the file (`stat`) only after its directory, or the one it links into, changed (`DirectoryWatch`).
package final class LiveGrants: Sendable {
    private struct Stamp: Equatable {
        var device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = -1, seconds: Int = 0, nanoseconds: Int = 0
    }

    private struct Cache {
        var stamp = Stamp()
        var merged = RoleMap()
        /// Changes the watch reported, and how many of them a look at the file has covered:
        /// unequal, the file must be looked at (another request may be reloading it).
        var changes = 0, lookedThrough = 0
        /// The changes the stored grants were read after: a slower look that started earlier
        /// (and may have read the file before a change) must not overwrite them.
        var storedThrough = 0
    }

    private let path: String?
    private let configured: RoleMap
    private let log: @Sendable (String) -> Void
    private let changed: @Sendable (_ before: RoleMap, _ after: RoleMap) -> Void
    private let cache = Mutex(Cache())
    /// The directories of the file and of what it links to; nil without a file.
    private let watch: DirectoryWatch?

    /// Grants from the file at `path` (none: only `configured`) merged with `configured` (which
    /// win). `changed` hears of every reload that changed the grants in force (to audit it).
    package init(path: String?, configured: RoleMap, log: @escaping @Sendable (String) -> Void,
                 changed: @escaping @Sendable (_ before: RoleMap, _ after: RoleMap) -> Void = { _, _ in }) throws {
        self.path = path
        self.configured = configured
        self.log = log
        self.changed = changed
        // Watched before the first read, so a change during it is seen.
        watch = path.map { path in
            DirectoryWatch(directory: Self.directory(of: path)) { log("role grants in \(path) are checked on every request: \($0)") }
        }
        if let path { watch?.follow(Self.resolvedDirectory(of: path)) }
        let initial = try path.map { try RoleMap.load(from: $0) } ?? RoleMap()
        cache.withLock { $0 = Cache(stamp: path.map(Self.stamp(of:)) ?? Stamp(), merged: Self.merge(initial, configured)) }
    }

    /// The grants now.
    package func current() -> RoleMap {
        guard let path, let watch else { return configured }
        // Taken and counted under the lock: a look must not find the queue empty and the count
        // unchanged while another has taken an event and not yet counted it.
        let look = cache.withLock { cache -> (merged: RoleMap?, through: Int) in
            if watch.changed() { cache.changes += 1 }
            return (cache.changes == cache.lookedThrough ? cache.merged : nil, cache.changes)
        }
        if let merged = look.merged { return merged }
        watch.follow(Self.resolvedDirectory(of: path))  // a swapped symlink points somewhere new
        let stamp = Self.stamp(of: path)
        let unchanged = cache.withLock { cache -> RoleMap? in
            guard cache.stamp == stamp else { return nil }
            cache.lookedThrough = max(cache.lookedThrough, look.through)
            return cache.merged
        }
        if let unchanged { return unchanged }
        var merged: RoleMap?
        do {
            merged = Self.merge(try RoleMap.load(from: path), configured)
            log("role grants reloaded from \(path)")
        } catch {
            log("role grants in \(path) not reloaded, keeping the previous ones: \(error)")
        }
        let (before, after) = cache.withLock { cache -> (RoleMap, RoleMap) in
            let before = cache.merged
            cache.lookedThrough = max(cache.lookedThrough, look.through)
            guard look.through >= cache.storedThrough else { return (before, before) }
            cache.storedThrough = look.through
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

    /// The directory of what `path` resolves to, through symlinks (a Kubernetes ConfigMap
    /// volume links the file into a directory its updates replace); `path`'s own when it does
    /// not resolve.
    private static func resolvedDirectory(of path: String) -> String {
        guard let resolved = realpath(path, nil) else { return directory(of: path) }
        defer { free(resolved) }
        return directory(of: String(cString: resolved))
    }

    /// The directory part of `path` (`.` for a bare name).
    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func stamp(of path: String) -> Stamp {
        var info = stat()
        guard stat(path, &info) == 0 else { return Stamp() }
        return Stamp(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                     seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec)
    }
}
