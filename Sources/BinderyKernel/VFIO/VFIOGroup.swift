import CBinderyKernel
import Glibc

/// A VFIO group (`/dev/vfio/<n>`): the unit of device isolation the IOMMU gives.
public final class VFIOGroup: @unchecked Sendable {
    /// The boundary every call goes through.
    public let syscalls: any Syscalls
    /// The IOMMU group number.
    public let number: Int
    /// The group's file descriptor (-1 once closed).
    public private(set) var fd: Int32

    /// What `VFIO_GROUP_GET_STATUS` says.
    public struct Status: Sendable, Equatable {
        /// Every device in the group is bound to vfio-pci (or to no driver).
        public var isViable: Bool
        /// The group is attached to a container.
        public var hasContainer: Bool
    }

    /// Opens `/dev/vfio/<number>` (EBUSY when another process or context has it open).
    public init(number: Int, syscalls: any Syscalls) throws(KernelError) {
        self.syscalls = syscalls
        self.number = number
        fd = try syscalls.openOrThrow("/dev/vfio/\(number)", flags: O_RDWR)
    }

    /// Adopts group `number`'s fd a previous process kept; `VFIO_GROUP_GET_STATUS` must say it
    /// is viable and in a container.
    public init(number: Int, adopting fd: Int32, syscalls: any Syscalls) throws(KernelError) {
        self.syscalls = syscalls
        self.number = number
        self.fd = fd
        let status = try status()
        guard status.isViable, status.hasContainer else {
            self.fd = -1
            throw .unexpected(call: "VFIO_GROUP_GET_STATUS", detail: "adopted group \(number) is \(status.isViable ? "viable" : "not viable") and \(status.hasContainer ? "in" : "not in") a container")
        }
    }

    deinit { close() }

    /// Closes the group (the kernel detaches it from its container).
    public func close() {
        if fd >= 0 { _ = syscalls.close(fd) }
        fd = -1
    }

    var resource: String { "group \(number)" }

    /// `VFIO_GROUP_GET_STATUS`.
    public func status() throws(KernelError) -> Status {
        var status = vfio_group_status()
        status.argsz = UInt32(MemoryLayout<vfio_group_status>.size)
        try syscalls.call(fd, .groupGetStatus, &status, on: resource)
        return Status(isViable: status.flags & UInt32(VFIO_GROUP_FLAGS_VIABLE) != 0,
                      hasContainer: status.flags & UInt32(VFIO_GROUP_FLAGS_CONTAINER_SET) != 0)
    }

    /// `VFIO_GROUP_SET_CONTAINER`.
    public func setContainer(_ container: VFIOContainer) throws(KernelError) {
        var containerFD = container.fd
        try syscalls.call(fd, .groupSetContainer, &containerFD, on: resource)
    }

    /// `VFIO_GROUP_UNSET_CONTAINER` (EBUSY while a device fd is open).
    public func unsetContainer() throws(KernelError) {
        try syscalls.call(fd, .groupUnsetContainer, value: 0, on: resource)
    }

    /// `VFIO_GROUP_GET_DEVICE_FD` for the device named `address` (`0000:3b:00.0`).
    public func openDevice(_ address: String) throws(KernelError) -> VFIODevice {
        var name = Array(address.utf8CString)
        let deviceFD = name.withUnsafeMutableBytes { syscalls.ioctl(fd, .groupGetDeviceFD, $0.baseAddress!) }
        guard deviceFD >= 0 else {
            throw .ioctl(call: IoctlRequest.groupGetDeviceFD.name, errno: Errno(-deviceFD), resource: "\(resource) device \(address)")
        }
        return VFIODevice(address: address, fd: deviceFD, syscalls: syscalls)
    }
}

/// An open VFIO device (from a group, or a cdev for iommufd).
public final class VFIODevice: @unchecked Sendable {
    /// The boundary every call goes through.
    public let syscalls: any Syscalls
    /// The PCI address.
    public let address: String
    /// The device's file descriptor (-1 once closed).
    public private(set) var fd: Int32

    /// What `VFIO_DEVICE_GET_INFO` says.
    public struct Info: Sendable, Equatable {
        /// `VFIO_DEVICE_FLAGS_*` (PCI 1<<1, RESET 1<<0, ...).
        public var flags: UInt32
        /// Number of regions (BARs, config, ROM, VGA...).
        public var regions: UInt32
        /// Number of interrupt types.
        public var interrupts: UInt32
        /// True for a PCI device.
        public var isPCI: Bool { flags & UInt32(VFIO_DEVICE_FLAGS_PCI) != 0 }
    }

    /// Wraps an open device fd.
    public init(address: String, fd: Int32, syscalls: any Syscalls) {
        self.address = address
        self.fd = fd
        self.syscalls = syscalls
    }

    /// Opens a VFIO device cdev (`/dev/vfio/devices/vfioN`) for iommufd use.
    public convenience init(cdev path: String, address: String, syscalls: any Syscalls) throws(KernelError) {
        self.init(address: address, fd: try syscalls.openOrThrow(path, flags: O_RDWR), syscalls: syscalls)
    }

    deinit { close() }

    /// Closes the device fd.
    public func close() {
        if fd >= 0 { _ = syscalls.close(fd) }
        fd = -1
    }

    /// `VFIO_DEVICE_GET_INFO`.
    public func info() throws(KernelError) -> Info {
        var info = vfio_device_info()
        info.argsz = UInt32(MemoryLayout<vfio_device_info>.size)
        try syscalls.call(fd, .deviceGetInfo, &info, on: "device \(address)")
        return Info(flags: info.flags, regions: info.num_regions, interrupts: info.num_irqs)
    }
}
