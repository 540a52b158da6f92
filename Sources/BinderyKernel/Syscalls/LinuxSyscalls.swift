import CBinderyKernel
import Glibc

/// The kernel boundary passed straight to Linux.
public final class LinuxSyscalls: Syscalls {
    /// A boundary to this machine's kernel.
    public init() {}

    public var driverName: String { "linux" }

    public var kernelRelease: String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    public func open(_ path: String, flags: Int32) -> Int32 {
        let fd = bindery_open(path, flags | O_CLOEXEC, 0)
        return fd >= 0 ? fd : -errno
    }

    public func openBeneath(_ directory: String, _ relative: String, flags: Int32) -> Int32 {
        bindery_open_beneath(directory, relative, flags)
    }

    public func close(_ fd: Int32) -> Int32 {
        Glibc.close(fd) == 0 ? 0 : -errno
    }

    public func duplicate(_ fd: Int32, describing description: String) -> Int32 {
        let copy = bindery_duplicate(fd)
        return copy >= 0 ? copy : -errno
    }

    public func ioctl(_ fd: Int32, _ request: IoctlRequest, _ argument: UnsafeMutableRawPointer) -> Int32 {
        let result = bindery_ioctl_pointer(fd, request.code, argument)
        return result >= 0 ? result : -errno
    }

    public func ioctl(_ fd: Int32, _ request: IoctlRequest, value: UInt) -> Int32 {
        let result = bindery_ioctl_value(fd, request.code, value)
        return result >= 0 ? result : -errno
    }

    public func mmap(length: Int, fd: Int32, offset: Int64) -> Result<UInt64, Errno> {
        let flags = fd < 0 ? (MAP_SHARED | MAP_ANONYMOUS) : MAP_SHARED
        let address = Glibc.mmap(nil, length, PROT_READ | PROT_WRITE, flags, fd, off_t(offset))
        guard let address, address != MAP_FAILED else { return .failure(Errno(errno)) }
        return .success(UInt64(UInt(bitPattern: address)))
    }

    public func munmap(address: UInt64, length: Int) -> Int32 {
        Glibc.munmap(UnsafeMutableRawPointer(bitPattern: UInt(address)), length) == 0 ? 0 : -errno
    }

    public func readFile(_ path: String) -> Result<[UInt8], Errno> {
        let fd = bindery_open(path, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { return .failure(Errno(errno)) }
        defer { Glibc.close(fd) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(Errno(errno))
            }
            if count == 0 { return .success(contents) }
            contents += chunk[0..<count]
        }
    }

    public func writeFile(_ path: String, _ text: String) -> Result<Void, Errno> {
        let fd = bindery_open(path, O_WRONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { return .failure(Errno(errno)) }
        defer { Glibc.close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written < 0 { return .failure(Errno(errno)) }
        return written == bytes.count ? .success(()) : .failure(.EIO)
    }

    public func listDirectory(_ path: String) -> Result<[String], Errno> {
        guard let directory = opendir(path) else { return .failure(Errno(errno)) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: &entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return .success(names.sorted())
    }

    public func readLink(_ path: String) -> Result<String, Errno> {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
        guard count >= 0 else { return .failure(Errno(errno)) }
        return .success(String(decoding: buffer[0..<count], as: UTF8.self))
    }
}
