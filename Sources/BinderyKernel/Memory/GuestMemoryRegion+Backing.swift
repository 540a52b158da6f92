import Glibc

extension GuestMemoryRegion {
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
