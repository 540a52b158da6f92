import CBinderyKernel

extension VMContext {
    /// Descriptors to keep in the service manager's fd store so that a restart finds the VM's
    /// kernel objects as they are: the container, each group, each device. Names are
    /// `container`, `group.<n>` and `device.<address with - for :>`.
    public var keptDescriptors: [String: Int32] {
        guard isIOMMUSet else { return [:] }   // nothing in the kernel worth keeping yet
        var kept = ["container": container.fd]
        for (number, group) in groups where group.fd >= 0 { kept["group.\(number)"] = group.fd }
        for (address, device) in devices where device.fd >= 0 {
            kept[DescriptorName.make("device", device: address)] = device.fd
        }
        return kept
    }

    /// None: a container's objects are its descriptors.
    public var objectIDs: [String: UInt32] { [:] }

    /// A context over descriptors a previous process kept (`keptDescriptors`' names), each
    /// checked with the kernel: the container answers `VFIO_GET_API_VERSION` and has its IOMMU
    /// set (`VFIO_IOMMU_GET_INFO`), each group is viable and in a container, each device
    /// answers `VFIO_DEVICE_GET_INFO` and its group was kept with it. Nothing is set up again:
    /// DMA mappings and bindings stay as they are in the kernel. Guest memory is mapped into
    /// this process again. When a check fails, every descriptor given is closed.
    public static func adopting(_ descriptors: [String: Int32], syscalls: any Syscalls, inventory: SysfsInventory,
                                memory: [GuestMemoryRegion]) throws(KernelError) -> VMContext {
        var context: VMContext?
        var consumed: Set<Int32> = []
        do throws(KernelError) {
            guard let containerFD = descriptors["container"] else {
                throw .unexpected(call: "adopt", detail: "no container among the kept descriptors \(descriptors.keys.sorted())")
            }
            let container = try VFIOContainer(adopting: containerFD, type: VFIO_TYPE1v2_IOMMU, syscalls: syscalls)
            consumed.insert(containerFD)
            let adopted = try VMContext(syscalls: syscalls, inventory: inventory, memory: memory, container: container)
            context = adopted
            guard container.iommuType != nil else {
                throw .unexpected(call: "VFIO_IOMMU_GET_INFO", detail: "the adopted container has no IOMMU set")
            }
            let info = try container.info()
            if info.nesting != nil { container.iommuType = VFIO_TYPE1_NESTING_IOMMU }
            adopted.isIOMMUSet = true
            adopted.nesting = info.nesting
            for (name, fd) in descriptors where name.hasPrefix("group.") {
                guard let number = Int(name.dropFirst("group.".count)) else { continue }
                adopted.groups[number] = try VFIOGroup(number: number, adopting: fd, syscalls: syscalls)
                consumed.insert(fd)
            }
            for (name, fd) in descriptors {
                guard let address = DescriptorName.device(in: name, kind: "device") else { continue }
                let device = VFIODevice(address: address, fd: fd, syscalls: syscalls)
                consumed.insert(fd)
                adopted.devices[address] = device
                _ = try device.info()
                guard let group = try? inventory.device(address).iommuGroup, adopted.groups[group] != nil else {
                    throw .unexpected(call: "adopt", detail: "device \(address)'s IOMMU group was not kept with it")
                }
                adopted.deviceGroups[address] = group
            }
            return adopted
        } catch {
            context?.close()
            for fd in descriptors.values where !consumed.contains(fd) { _ = syscalls.close(fd) }
            throw error
        }
    }
}
