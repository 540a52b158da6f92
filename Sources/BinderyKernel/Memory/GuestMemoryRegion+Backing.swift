import Glibc

extension GuestMemoryRegion {
    /// Maps the region into this process (its backing file, opened beneath its directory, or
    /// anonymous memory); returns the address. The file descriptor is closed again at once.
    func map(with syscalls: any Syscalls) throws(KernelError) -> UInt64 {
        var fd: Int32 = -1
        if let path = backingPath { fd = try openBacking(path, with: syscalls) }
        defer { if fd >= 0 { _ = syscalls.close(fd) } }
        switch syscalls.mmap(length: Int(size), fd: fd, offset: Int64(backingOffset)) {
        case let .success(address): return address
        case let .failure(errno): throw .mmap(errno: errno, resource: backingPath ?? "anonymous guest memory at 0x\(String(guestAddress, radix: 16))")
        }
    }

    /// Opens the backing file beneath its allowed directory; a path outside it, or one with a
    /// symlink in the way, fails naming openat2 and the errno.
    func openBacking(_ path: String, with syscalls: any Syscalls) throws(KernelError) -> Int32 {
        guard let backingDirectory, path.hasPrefix(backingDirectory.hasSuffix("/") ? backingDirectory : backingDirectory + "/") else {
            throw .open(path: path, errno: .EACCES)
        }
        let relative = String(path.dropFirst(backingDirectory.count).drop { $0 == "/" })
        let fd = syscalls.openBeneath(backingDirectory, relative, flags: O_RDWR)
        guard fd >= 0 else { throw .open(path: path, errno: Errno(-fd)) }
        return fd
    }
}
