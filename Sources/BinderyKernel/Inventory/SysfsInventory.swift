/// Reads the PCI inventory from sysfs under a configurable root (`/sys`, or a tree a test
/// builds). Inventory only: what the IOMMU can do is learned through VFIO, never here.
public struct SysfsInventory: Sendable {
    /// The boundary files are read through.
    public let syscalls: any Syscalls
    /// The sysfs mount point.
    public let root: String

    /// An inventory reader over `root`.
    public init(syscalls: any Syscalls, root: String = "/sys") {
        self.syscalls = syscalls
        self.root = root
    }

    var devicesDirectory: String { root + "/bus/pci/devices" }

    /// The sysfs directory of `address`.
    public func path(of address: String) -> String { devicesDirectory + "/" + address }

    /// Every PCI device, by address.
    public func devices() throws(KernelError) -> [PCIDevice] {
        let addresses: [String]
        switch syscalls.listDirectory(devicesDirectory) {
        case let .success(names): addresses = names.filter(PCIDevice.isValidAddress)
        case let .failure(errno): throw .file(operation: "list", path: devicesDirectory, errno: errno)
        }
        var devices: [PCIDevice] = []
        for address in addresses {
            devices.append(try device(address))
        }
        return devices
    }

    /// One device.
    public func device(_ address: String) throws(KernelError) -> PCIDevice {
        let directory = path(of: address)
        let config: [UInt8]
        switch syscalls.readFile(directory + "/config") {
        case let .success(bytes): config = bytes
        case let .failure(errno): throw .file(operation: "read", path: directory + "/config", errno: errno)
        }
        return PCIDevice(
            address: address,
            vendorID: UInt16(try hex(directory + "/vendor")),
            deviceID: UInt16(try hex(directory + "/device")),
            classCode: UInt32(try hex(directory + "/class")),
            iommuGroup: try linkLeaf(directory + "/iommu_group").flatMap { Int($0) },
            driver: try linkLeaf(directory + "/driver"),
            numaNode: Int(try syscalls.readText(directory + "/numa_node")) ?? -1,
            capabilities: PCIExtendedCapabilities(config: config)
        )
    }

    /// The current driver of `address`, or nil when unbound.
    public func driver(of address: String) throws(KernelError) -> String? {
        try linkLeaf(path(of: address) + "/driver")
    }

    /// The addresses in IOMMU group `group`.
    public func members(ofGroup group: Int) throws(KernelError) -> [String] {
        let directory = root + "/kernel/iommu_groups/\(group)/devices"
        switch syscalls.listDirectory(directory) {
        case let .success(names): return names.filter(PCIDevice.isValidAddress)
        case let .failure(errno): throw .file(operation: "list", path: directory, errno: errno)
        }
    }

    private func hex(_ path: String) throws(KernelError) -> UInt64 {
        let text = try syscalls.readText(path)
        guard text.hasPrefix("0x"), let value = UInt64(text.dropFirst(2), radix: 16) else {
            throw .unexpected(call: "read \(path)", detail: "expected a hex number, found \"\(text)\"")
        }
        return value
    }

    /// The last path component of a symlink's target, or nil when the link does not exist.
    private func linkLeaf(_ path: String) throws(KernelError) -> String? {
        switch syscalls.readLink(path) {
        case let .success(target): return target.split(separator: "/").last.map(String.init)
        case .failure(.ENOENT): return nil
        case let .failure(errno): throw .file(operation: "readlink", path: path, errno: errno)
        }
    }
}
