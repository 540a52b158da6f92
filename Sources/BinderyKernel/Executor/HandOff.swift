/// What the process that runs a VM (its VMM) receives to run it: duplicates of the VM's IOMMU
/// context and device descriptors, and what each one is. Bindery keeps the originals and goes
/// on managing mappings and bindings through them, so the VMM sees every change at once.
public struct HandOff: Sendable {
    /// The binding path the descriptors belong to.
    public enum Path: String, Sendable, Codable {
        /// A type1 container with each device's fd from its group.
        case vfioType1 = "vfio-type1"
        /// An iommufd with each device's VFIO cdev, bound and attached.
        case iommufd
    }

    /// What a descriptor is.
    public enum Kind: String, Sendable, Codable {
        /// `/dev/vfio/vfio`, its IOMMU set and guest memory DMA-mapped.
        case vfioContainer = "vfio-container"
        /// A device fd from `VFIO_GROUP_GET_DEVICE_FD`.
        case vfioDevice = "vfio-device"
        /// `/dev/iommu`, holding the IOAS with guest memory mapped.
        case iommufd
        /// A device's `/dev/vfio/devices/vfioN`, bound to the iommufd and attached.
        case vfioCdev = "vfio-cdev"
        /// A guest memory region's backing file (`guest-memory.N`, N its place in the VM's memory).
        case guestMemory = "guest-memory"
    }

    /// One descriptor and what it is.
    public struct Descriptor: Sendable {
        /// Its name, as `LISTEN_FDNAMES` carries it (letters, digits, `-`, `.`, `_`).
        public var name: String
        /// What it is.
        public var kind: Kind
        /// The duplicate, owned by the hand-off until sent or closed.
        public var fd: Int32
        /// The PCI address, for devices.
        public var device: String?
        /// The IOMMU group, for type1 devices.
        public var group: Int?
        /// `VFIO_DEVICE_GET_INFO`'s region count, for devices.
        public var regions: UInt32?
        /// `VFIO_DEVICE_GET_INFO`'s interrupt type count, for devices.
        public var interrupts: UInt32?
        /// The iommufd device id `VFIO_DEVICE_BIND_IOMMUFD` gave, for cdevs.
        public var iommufdDeviceID: UInt32?
        /// The region's place in the VM's memory, for guest memory.
        public var memoryRegion: Int?
    }

    /// The path.
    public var path: Path
    /// The descriptors, in the order they are sent.
    public var descriptors: [Descriptor]
    /// The IOAS holding guest memory (iommufd).
    public var ioas: UInt32?
    /// The HWPT the devices are attached to (iommufd).
    public var hwpt: UInt32?
    /// Guest memory as mapped for DMA.
    public var memory: [GuestMemoryRegion]

    /// A descriptor name for a device address: `vfio-device.0000-3b-00.0`.
    public static func name(_ kind: Kind, device: String) -> String {
        DescriptorName.make(kind.rawValue, device: device)
    }

    /// Closes every duplicate (after sending them, or when sending failed).
    public func close(with syscalls: any Syscalls) {
        for descriptor in descriptors where descriptor.fd >= 0 { _ = syscalls.close(descriptor.fd) }
    }
}

/// Duplicates collected one by one, closed again if a later one fails.
struct HandOffBuilder {
    let syscalls: any Syscalls
    var descriptors: [HandOff.Descriptor] = []

    mutating func add(_ fd: Int32, name: String, kind: HandOff.Kind, device: String? = nil, group: Int? = nil,
                      info: VFIODevice.Info? = nil, iommufdDeviceID: UInt32? = nil) throws(KernelError) {
        let copy = syscalls.duplicate(fd, describing: name)
        guard copy >= 0 else {
            discard()
            throw .ioctl(call: "fcntl(F_DUPFD_CLOEXEC)", errno: Errno(-copy), resource: name)
        }
        descriptors.append(.init(name: name, kind: kind, fd: copy, device: device, group: group, regions: info?.regions,
                                 interrupts: info?.interrupts, iommufdDeviceID: iommufdDeviceID))
    }

    /// Each file-backed guest memory region's file, opened beneath its directory again.
    mutating func addMemory(_ memory: [GuestMemoryRegion]) throws(KernelError) {
        for (index, region) in memory.enumerated() {
            guard let path = region.backingPath else { continue }
            let fd: Int32
            do { fd = try region.openBacking(path, with: syscalls) } catch { discard(); throw error }
            defer { _ = syscalls.close(fd) }
            try add(fd, name: "\(HandOff.Kind.guestMemory.rawValue).\(index)", kind: .guestMemory)
            descriptors[descriptors.count - 1].memoryRegion = index
        }
    }

    func discard() {
        for descriptor in descriptors { _ = syscalls.close(descriptor.fd) }
    }
}
