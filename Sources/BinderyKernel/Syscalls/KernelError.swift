/// Every failure of the kernel executor, each naming the call, the errno and the resource.
public enum KernelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An ioctl failed: its name, the errno, and what it was applied to.
    case ioctl(call: String, errno: Errno, resource: String)
    /// open(2) of a device node or file failed.
    case open(path: String, errno: Errno)
    /// mmap(2) failed.
    case mmap(errno: Errno, resource: String)
    /// A sysfs (or other) file operation failed: `operation` is read, write, readlink or list.
    case file(operation: String, path: String, errno: Errno)
    /// The kernel answered, but not as the ABI says it may (bad version, malformed reply).
    case unexpected(call: String, detail: String)
    /// The host lacks something this request needs; retrying cannot help.
    case unsupported(capability: String, detail: String)
    /// An IOMMU group cannot be used: some of its devices are bound to other drivers.
    case groupNotViable(group: Int, devicesInTheWay: [String])
    /// Managed rebinding left the device on the wrong driver (after trying to restore it).
    case rebindFailed(device: String, expected: String, found: String?)
    /// A flow failed with `error` and undoing what it had done also failed: the kernel is not
    /// as it was before the attempt. `undo` lists each undo step's failure, in the order tried.
    indirect case rollbackIncomplete(error: KernelError, undo: [KernelError])

    /// The errno, when the failure carries one.
    public var errno: Errno? {
        switch self {
        case let .ioctl(_, errno, _), let .open(_, errno), let .mmap(errno, _), let .file(_, _, errno): return errno
        case let .rollbackIncomplete(error, _): return error.errno
        default: return nil
        }
    }

    /// The ioctl or syscall that failed, for status and metrics (`VFIO_IOMMU_MAP_DMA`, `open`).
    public var call: String {
        switch self {
        case let .ioctl(call, _, _), let .unexpected(call, _): return call
        case .open: return "open"
        case .mmap: return "mmap"
        case let .file(operation, _, _): return operation
        case .unsupported: return "capability"
        case .groupNotViable: return "VFIO_GROUP_GET_STATUS"
        case .rebindFailed: return "drivers_probe"
        case let .rollbackIncomplete(error, _): return error.call
        }
    }

    /// True when retrying the same call later could succeed.
    public var isTransient: Bool {
        guard let errno else { return false }
        return [Errno.EBUSY, .EINTR, .EAGAIN, .EIO, .ENOMEM].contains(errno)
    }

    public var description: String {
        switch self {
        case let .ioctl(call, errno, resource): return "\(call) on \(resource) failed: \(errno.name)"
        case let .open(path, errno): return "open(\(path)) failed: \(errno.name)"
        case let .mmap(errno, resource): return "mmap of \(resource) failed: \(errno.name)"
        case let .file(operation, path, errno): return "\(operation) \(path) failed: \(errno.name)"
        case let .unexpected(call, detail): return "\(call): \(detail)"
        case let .unsupported(capability, detail): return "\(capability) is not supported by this host: \(detail)"
        case let .groupNotViable(group, devices):
            return "IOMMU group \(group) is not viable: \(devices.joined(separator: ", ")) bound to other drivers"
        case let .rebindFailed(device, expected, found):
            return "\(device) should be bound to \(expected) but is bound to \(found ?? "no driver")"
        case let .rollbackIncomplete(error, undo):
            let undone = undo.map(\.description).joined(separator: "; ")
            return "\(error); undoing the attempt also failed (\(undone)), so the kernel is not as it was before"
        }
    }
}
