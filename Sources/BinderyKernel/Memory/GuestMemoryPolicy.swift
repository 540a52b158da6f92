import CBinderyKernel
import Glibc

/// Where guest memory may come from: files beneath the directories the operator configured
/// (by default `<data-dir>/memory`, plus a hugetlbfs mount when configured). A backing file is
/// opened without following symlinks or leaving its directory (`openat2` with
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), must be a regular file or a hugetlbfs file, and
/// must hold `offset + size` bytes. Anything else is refused with the rule it broke, so no
/// caller can make `/etc/shadow`, `/dev/mem` or `/proc/self/mem` guest memory that a device
/// may write.
public struct GuestMemoryPolicy: Sendable, Equatable {
    /// The allowed directories: absolute, without `.`/`..` or empty components.
    public let directories: [String]

    /// A policy allowing `directories`; each must be an absolute, normalized path.
    public init(directories: [String]) throws(GuestMemoryRefusal) {
        self.directories = try directories.map { (directory) throws(GuestMemoryRefusal) -> String in
            guard let parts = Self.components(directory) else {
                throw GuestMemoryRefusal(rule: "memory-directory", detail: "memory directory \(directory) must be an absolute path without . or .. components")
            }
            return "/" + parts.joined(separator: "/")
        }
    }

    /// The components of an absolute path, or nil when it is relative or has `.`, `..` or
    /// empty components.
    static func components(_ path: String) -> [Substring]? {
        guard path.hasPrefix("/"), !path.contains("\0") else { return nil }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        if parts == [""] { return [] }
        guard !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return nil }
        return parts
    }

    /// The allowed directory holding `path`, and `path` relative to it.
    public func locate(_ path: String) throws(GuestMemoryRefusal) -> (directory: String, relative: String) {
        guard let parts = Self.components(path), !parts.isEmpty else {
            throw GuestMemoryRefusal(rule: "normalized-path", detail: "\(path) must be an absolute path without . or .. components or empty segments")
        }
        for directory in directories {
            let base = Self.components(directory) ?? []
            if parts.count > base.count, Array(parts.prefix(base.count)) == base {
                return (directory, parts.dropFirst(base.count).joined(separator: "/"))
            }
        }
        let allowed = directories.isEmpty ? "none are configured" : directories.joined(separator: ", ")
        throw GuestMemoryRefusal(rule: "memory-directory", detail: "\(path) is not beneath an allowed memory directory (\(allowed))")
    }

    /// Opens the backing file read-write and checks it; returns its descriptor (the caller closes it).
    public func open(_ path: String, offset: UInt64, size: UInt64) throws(GuestMemoryRefusal) -> Int32 {
        let (directory, relative) = try locate(path)
        let fd = bindery_open_beneath(directory, relative, O_RDWR)
        guard fd >= 0 else {
            switch -fd {
            case ELOOP: throw GuestMemoryRefusal(rule: "no-symlinks", detail: "\(path): a symbolic link is in the way (openat2: ELOOP)")
            case EXDEV: throw GuestMemoryRefusal(rule: "memory-directory", detail: "\(path) resolves outside \(directory) (openat2: EXDEV)")
            default: throw GuestMemoryRefusal(rule: "backing-file", detail: "\(path) cannot be opened (openat2: \(Errno(-fd).name))")
            }
        }
        do throws(GuestMemoryRefusal) {
            try Self.checkFile(fd, path: path, offset: offset, size: size)
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Checks the file behind `path` and closes it again.
    public func check(_ path: String, offset: UInt64, size: UInt64) throws(GuestMemoryRefusal) {
        Glibc.close(try open(path, offset: offset, size: size))
    }

    private static func checkFile(_ fd: Int32, path: String, offset: UInt64, size: UInt64) throws(GuestMemoryRefusal) {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw GuestMemoryRefusal(rule: "backing-file", detail: "\(path): fstat failed (\(Errno(errno).name))")
        }
        let filesystem = bindery_filesystem_type(fd)
        let isHugeTLB = filesystem == BINDERY_HUGETLBFS_MAGIC
        guard info.st_mode & S_IFMT == S_IFREG, filesystem != BINDERY_PROC_SUPER_MAGIC, filesystem != BINDERY_SYSFS_MAGIC else {
            throw GuestMemoryRefusal(rule: "regular-file", detail: "\(path) is not a regular or hugetlbfs file")
        }
        let length = UInt64(max(0, info.st_size))
        guard size <= length, offset <= length - size else {
            throw GuestMemoryRefusal(rule: "file-size", detail: "\(path) holds \(length) bytes; offset \(offset) plus size \(size) needs more"
                                     + (isHugeTLB ? " (size hugetlbfs files with ftruncate first)" : ""))
        }
    }
}

/// A backing file the policy refuses: the rule it broke and a sentence naming the file.
public struct GuestMemoryRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// `memory-directory`, `normalized-path`, `no-symlinks`, `regular-file`, `file-size`, `backing-file`.
    public let rule: String
    /// A plain sentence.
    public let detail: String
    /// The detail.
    public var description: String { detail }
}
