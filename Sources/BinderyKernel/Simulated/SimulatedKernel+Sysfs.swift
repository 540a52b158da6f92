/// A virtual `/sys` for the synthetic host: the PCI device directories, IOMMU groups, and
/// the driver_override / unbind / drivers_probe files managed rebinding writes.
extension SimulatedKernel {
    private static let devicesDirectory = "/sys/bus/pci/devices"
    private static let groupsDirectory = "/sys/kernel/iommu_groups"
    private static let probePath = "/sys/bus/pci/drivers_probe"

    /// Splits `/sys/bus/pci/devices/<address>/<rest>`.
    private func deviceFile(_ path: String) -> (SimDevice, String)? {
        guard path.hasPrefix(Self.devicesDirectory + "/") else { return nil }
        let parts = path.dropFirst(Self.devicesDirectory.count + 1).split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, !hidden.contains(parts[0]), let device = devices[parts[0]] else { return nil }
        return (device, parts[1])
    }

    /// The name a fault plan gives a sysfs access: the operation and the file's name.
    private func faultName(_ operation: String, _ path: String) -> String {
        "\(operation) \(path.split(separator: "/").last.map(String.init) ?? path)"
    }

    public func readFile(_ path: String) -> Result<[UInt8], Errno> {
        if let errno = faults.fault(for: faultName("read", path)) { return .failure(errno) }
        return lock.withLock {
            guard let (device, file) = deviceFile(path) else { return .failure(.ENOENT) }
            func text(_ value: String) -> Result<[UInt8], Errno> { .success(Array((value + "\n").utf8)) }
            func hex(_ value: UInt32, _ digits: Int) -> String {
                let raw = String(value, radix: 16)
                return "0x" + String(repeating: "0", count: max(0, digits - raw.count)) + raw
            }
            switch file {
            case "vendor": return text(hex(UInt32(device.spec.vendorID), 4))
            case "device": return text(hex(UInt32(device.spec.deviceID), 4))
            case "class": return text(hex(device.spec.classCode, 6))
            case "numa_node": return text(String(device.spec.numaNode))
            case "config": return .success(device.config)
            case "driver_override": return text(device.driverOverride ?? "(null)")
            default:
                // The host's own use of the device exists only while its native driver has it.
                let parts = file.split(separator: "/")
                if parts.count == 3, parts[0] == "net", parts[2] == "operstate", device.driver == device.spec.nativeDriver,
                   device.spec.upInterfaces.contains(String(parts[1])) {
                    return text("up")
                }
                return .failure(.ENOENT)
            }
        }
    }

    public func writeFile(_ path: String, _ text: String) -> Result<Void, Errno> {
        if let errno = faults.fault(for: faultName("write", path)) { return .failure(errno) }
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return lock.withLock {
            if path == Self.probePath {
                guard let device = devices[value] else { return .failure(.ENODEV) }
                if device.driver == nil { device.driver = device.driverOverride ?? device.spec.nativeDriver }
                return .success(())
            }
            guard let (device, file) = deviceFile(path) else { return .failure(.ENOENT) }
            switch file {
            case "driver_override":
                device.driverOverride = value.isEmpty ? nil : value
                return .success(())
            case "driver/unbind":
                guard device.driver != nil else { return .failure(.ENOENT) }
                guard value == device.spec.address else { return .failure(.ENODEV) }
                if device.driver == "vfio-pci", groups[device.spec.group]?.isOpen == true || device.iommufdBinding != nil {
                    return .failure(.EBUSY)
                }
                device.driver = nil
                return .success(())
            default:
                return .failure(.EACCES)
            }
        }
    }

    public func listDirectory(_ path: String) -> Result<[String], Errno> {
        if let errno = faults.fault(for: faultName("list", path)) { return .failure(errno) }
        return lock.withLock {
            if path == Self.devicesDirectory { return .success(devices.keys.filter { !hidden.contains($0) }.sorted()) }
            if let (device, file) = deviceFile(path), let entries = Self.hostUseDirectory(device, file) {
                return entries.isEmpty ? .failure(.ENOENT) : .success(entries)
            }
            if let (device, file) = deviceFile(path), file == "vfio-dev" {
                guard host.iommufd, device.driver == "vfio-pci",
                      let index = host.devices.firstIndex(where: { $0.address == device.spec.address }) else { return .failure(.ENOENT) }
                return .success(["vfio\(index)"])
            }
            if path.hasPrefix(Self.groupsDirectory + "/"), path.hasSuffix("/devices"),
               let number = Int(path.dropFirst(Self.groupsDirectory.count + 1).dropLast("/devices".count)) {
                let members = devices.values.filter { $0.spec.group == number }.map(\.spec.address).sorted()
                return members.isEmpty ? .failure(.ENOENT) : .success(members)
            }
            return .failure(.ENOENT)
        }
    }

    /// `net`, `nvme` and `nvme/<ctrl>` of a device whose native driver has it; nil for other files.
    private static func hostUseDirectory(_ device: SimDevice, _ file: String) -> [String]? {
        let active = device.driver != nil && device.driver == device.spec.nativeDriver
        switch file {
        case "net": return active ? device.spec.upInterfaces : []
        case "nvme": return active ? Array(Set(device.spec.nvmeNamespaces.compactMap { namespace in namespace.lastIndex(of: "n").map { String(namespace[..<$0]) } })).sorted() : []
        case let name where name.hasPrefix("nvme/"):
            let controller = String(name.dropFirst("nvme/".count))
            return active ? device.spec.nvmeNamespaces.filter { $0.hasPrefix(controller + "n") } : []
        default: return nil
        }
    }

    public func readLink(_ path: String) -> Result<String, Errno> {
        if let errno = faults.fault(for: faultName("readlink", path)) { return .failure(errno) }
        return lock.withLock {
            guard let (device, file) = deviceFile(path) else { return .failure(.ENOENT) }
            switch file {
            case "iommu_group": return .success("../../../../kernel/iommu_groups/\(device.spec.group)")
            case "driver":
                guard let driver = device.driver else { return .failure(.ENOENT) }
                return .success("../../../../bus/pci/drivers/\(driver)")
            default: return .failure(.EINVAL)
            }
        }
    }
}
