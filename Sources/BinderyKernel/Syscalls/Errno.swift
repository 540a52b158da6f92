import Glibc

/// A Linux errno with its symbolic name, as the kernel or the simulated kernel returned it.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive errno value.
    public let code: Int32

    /// An errno from its value.
    public init(_ code: Int32) { self.code = code }

    /// The symbolic name (`EBUSY`), or `errno N` for values Bindery does not name.
    public var name: String { Errno.names[code] ?? "errno \(code)" }

    /// The errno named `name` (`"EBUSY"`), if Bindery knows it.
    public init?(name: String) {
        guard let code = Errno.names.first(where: { $0.value == name })?.key else { return nil }
        self.code = code
    }

    public var description: String { name }

    /// Operation not permitted.
    public static let EPERM = Errno(Glibc.EPERM)
    /// No such file or directory (or object).
    public static let ENOENT = Errno(Glibc.ENOENT)
    /// Interrupted system call.
    public static let EINTR = Errno(Glibc.EINTR)
    /// I/O error.
    public static let EIO = Errno(Glibc.EIO)
    /// Argument list too long (iommufd: non-zero bytes the kernel does not know).
    public static let E2BIG = Errno(Glibc.E2BIG)
    /// Bad file descriptor.
    public static let EBADF = Errno(Glibc.EBADF)
    /// Try again.
    public static let EAGAIN = Errno(Glibc.EAGAIN)
    /// Out of memory.
    public static let ENOMEM = Errno(Glibc.ENOMEM)
    /// Permission denied.
    public static let EACCES = Errno(Glibc.EACCES)
    /// Bad address.
    public static let EFAULT = Errno(Glibc.EFAULT)
    /// Device or resource busy.
    public static let EBUSY = Errno(Glibc.EBUSY)
    /// Already exists.
    public static let EEXIST = Errno(Glibc.EEXIST)
    /// No such device.
    public static let ENODEV = Errno(Glibc.ENODEV)
    /// Invalid argument.
    public static let EINVAL = Errno(Glibc.EINVAL)
    /// No space left (PASID space exhausted).
    public static let ENOSPC = Errno(Glibc.ENOSPC)
    /// Inappropriate ioctl for this file.
    public static let ENOTTY = Errno(Glibc.ENOTTY)
    /// Operation not supported.
    public static let EOPNOTSUPP = Errno(Glibc.EOPNOTSUPP)
    /// Function not implemented.
    public static let ENOSYS = Errno(Glibc.ENOSYS)
    /// Too many open files.
    public static let EMFILE = Errno(Glibc.EMFILE)
    /// Address in use (iommufd: a mapping in the way of an attach).
    public static let EADDRINUSE = Errno(Glibc.EADDRINUSE)

    private static let names: [Int32: String] = [
        Glibc.EPERM: "EPERM", Glibc.ENOENT: "ENOENT", Glibc.ESRCH: "ESRCH", Glibc.EINTR: "EINTR", Glibc.EIO: "EIO",
        Glibc.ENXIO: "ENXIO", Glibc.E2BIG: "E2BIG", Glibc.EBADF: "EBADF", Glibc.EAGAIN: "EAGAIN",
        Glibc.ENOMEM: "ENOMEM", Glibc.EACCES: "EACCES", Glibc.EFAULT: "EFAULT", Glibc.EBUSY: "EBUSY",
        Glibc.EEXIST: "EEXIST", Glibc.ENODEV: "ENODEV", Glibc.ENOTDIR: "ENOTDIR", Glibc.EISDIR: "EISDIR",
        Glibc.EINVAL: "EINVAL", Glibc.EMFILE: "EMFILE", Glibc.ENOTTY: "ENOTTY", Glibc.ENOSPC: "ENOSPC",
        Glibc.ERANGE: "ERANGE", Glibc.ENOSYS: "ENOSYS", Glibc.EOPNOTSUPP: "EOPNOTSUPP",
        Glibc.EOVERFLOW: "EOVERFLOW", Glibc.ETIMEDOUT: "ETIMEDOUT", Glibc.ELOOP: "ELOOP", Glibc.EXDEV: "EXDEV",
        Glibc.ENFILE: "ENFILE", Glibc.ENAMETOOLONG: "ENAMETOOLONG", Glibc.EADDRINUSE: "EADDRINUSE",
    ]
}
