/// The kernel boundary: the few system calls the executor makes. `LinuxSyscalls` passes
/// them to Linux; `SimulatedKernel` answers them in-process, decoding the same bytes.
/// Results follow the kernel's own convention: a non-negative value, or `-errno`.
public protocol Syscalls: AnyObject, Sendable {
    /// `linux` or `simulated`, as reported by `GET /v1/host`.
    var driverName: String { get }
    /// The kernel release (`uname -r`), or the simulated host's.
    var kernelRelease: String { get }
    /// open(2): a file descriptor, or `-errno`.
    func open(_ path: String, flags: Int32) -> Int32
    /// Opens `relative` strictly beneath `directory`: no symlinks, no leaving it (openat2
    /// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`). A file descriptor, or `-errno`.
    func openBeneath(_ directory: String, _ relative: String, flags: Int32) -> Int32
    /// close(2): 0 or `-errno`.
    func close(_ fd: Int32) -> Int32
    /// A duplicate of `fd` this process may send to another (SCM_RIGHTS) and must close:
    /// Linux dups it; the simulated kernel, whose objects cannot leave the process, gives an
    /// anonymous memory file named after `description`. Returns -errno on failure.
    func duplicate(_ fd: Int32, describing description: String) -> Int32
    /// ioctl(2) with a pointer to a request struct: the result, or `-errno`.
    func ioctl(_ fd: Int32, _ request: IoctlRequest, _ argument: UnsafeMutableRawPointer) -> Int32
    /// ioctl(2) with an integer argument: the result, or `-errno`.
    func ioctl(_ fd: Int32, _ request: IoctlRequest, value: UInt) -> Int32
    /// mmap(2) shared and read-write of `length` bytes of `fd` at `offset` (anonymous when `fd` is -1).
    func mmap(length: Int, fd: Int32, offset: Int64) -> Result<UInt64, Errno>
    /// munmap(2).
    func munmap(address: UInt64, length: Int) -> Int32
    /// The whole contents of a (sysfs) file.
    func readFile(_ path: String) -> Result<[UInt8], Errno>
    /// Writes `text` to a (sysfs) file in one write(2).
    func writeFile(_ path: String, _ text: String) -> Result<Void, Errno>
    /// The entries of a directory, without `.` and `..`.
    func listDirectory(_ path: String) -> Result<[String], Errno>
    /// The target of a symbolic link.
    func readLink(_ path: String) -> Result<String, Errno>
}

extension Syscalls {
    /// open(2), throwing `KernelError.open`.
    func openOrThrow(_ path: String, flags: Int32) throws(KernelError) -> Int32 {
        let fd = open(path, flags: flags)
        guard fd >= 0 else { throw .open(path: path, errno: Errno(-fd)) }
        return fd
    }

    /// An ioctl on a request struct, throwing `KernelError.ioctl` naming it and `resource`.
    @discardableResult
    func call<T>(_ fd: Int32, _ request: IoctlRequest, _ argument: inout T, on resource: @autoclosure () -> String) throws(KernelError) -> Int32 {
        let result = withUnsafeMutableBytes(of: &argument) { ioctl(fd, request, $0.baseAddress!) }
        guard result >= 0 else { throw .ioctl(call: request.name, errno: Errno(-result), resource: resource()) }
        return result
    }

    /// An ioctl on a raw buffer, throwing `KernelError.ioctl`.
    @discardableResult
    func call(_ fd: Int32, _ request: IoctlRequest, buffer: UnsafeMutableRawBufferPointer, on resource: @autoclosure () -> String) throws(KernelError) -> Int32 {
        let result = ioctl(fd, request, buffer.baseAddress!)
        guard result >= 0 else { throw .ioctl(call: request.name, errno: Errno(-result), resource: resource()) }
        return result
    }

    /// An ioctl with an integer argument, throwing `KernelError.ioctl`.
    @discardableResult
    func call(_ fd: Int32, _ request: IoctlRequest, value: UInt, on resource: @autoclosure () -> String) throws(KernelError) -> Int32 {
        let result = ioctl(fd, request, value: value)
        guard result >= 0 else { throw .ioctl(call: request.name, errno: Errno(-result), resource: resource()) }
        return result
    }

    /// A file's contents as trimmed text, throwing `KernelError.file`.
    func readText(_ path: String) throws(KernelError) -> String {
        switch readFile(path) {
        case let .success(bytes):
            return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: [" ", "\n", "\t", "\0"])
        case let .failure(errno): throw .file(operation: "read", path: path, errno: errno)
        }
    }

    /// Writes text, throwing `KernelError.file`.
    func write(_ path: String, _ text: String) throws(KernelError) {
        if case let .failure(errno) = writeFile(path, text) { throw .file(operation: "write", path: path, errno: errno) }
    }
}

private extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
