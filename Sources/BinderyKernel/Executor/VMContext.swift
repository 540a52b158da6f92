import CBinderyKernel
import Glibc

/// One VM's IOMMU context on a type1 container: its guest memory (mmapped and DMA-mapped once
/// the first group is attached), its devices, and — where the host advertises nesting — its
/// PASIDs and bound guest page tables. Closing it releases everything in the kernel.
public final class VMContext: @unchecked Sendable {
    /// The kernel boundary.
    public let syscalls: any Syscalls
    /// Where devices and groups are looked up.
    public let inventory: SysfsInventory
    /// The VM's container.
    public let container: VFIOContainer
    /// Guest memory regions.
    public let memory: [GuestMemoryRegion]
    /// The nesting capability the container reported (nil: none, or no device attached yet).
    public private(set) var nesting: NestingInfo?

    private var mapped: [(region: GuestMemoryRegion, vaddr: UInt64)] = []
    private var groups: [Int: VFIOGroup] = [:]
    private var devices: [String: VFIODevice] = [:]
    /// Each attached device's group, remembered at attach: a device that vanished from sysfs
    /// must still be detachable.
    private var deviceGroups: [String: Int] = [:]
    private var isIOMMUSet = false

    /// Opens a container for a VM and maps its memory into this process (DMA mapping waits
    /// for the first device: type1 needs a group before `SET_IOMMU`).
    public init(syscalls: any Syscalls, inventory: SysfsInventory, memory: [GuestMemoryRegion]) throws(KernelError) {
        self.syscalls = syscalls
        self.inventory = inventory
        self.memory = memory
        container = try VFIOContainer(syscalls: syscalls)
        do throws(KernelError) {
            for region in memory { mapped.append((region, try mmap(region))) }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Addresses of the devices attached now.
    public var attachedDevices: [String] { devices.keys.sorted() }

    /// True once guest memory is DMA-mapped.
    public var isMemoryMapped: Bool { isIOMMUSet }

    private func mmap(_ region: GuestMemoryRegion) throws(KernelError) -> UInt64 {
        var fd: Int32 = -1
        if let path = region.backingPath { fd = try region.openBacking(path, with: syscalls) }
        defer { if fd >= 0 { _ = syscalls.close(fd) } }
        switch syscalls.mmap(length: Int(region.size), fd: fd, offset: Int64(region.backingOffset)) {
        case let .success(address): return address
        case let .failure(errno): throw .mmap(errno: errno, resource: region.backingPath ?? "anonymous guest memory at 0x\(String(region.guestAddress, radix: 16))")
        }
    }

    /// Attaches `address`: opens its group (refusing a group with members on other drivers,
    /// naming them), joins the container, sets the IOMMU and maps guest memory on the first
    /// group, and opens the device.
    public func attach(_ address: String) throws(KernelError) {
        if devices[address] != nil { return }
        let device = try inventory.device(address)
        guard let number = device.iommuGroup else {
            throw .unsupported(capability: "IOMMU group", detail: "\(address) has no IOMMU group")
        }
        if groups[number] == nil {
            let members = try inventory.members(ofGroup: number).map { (member) throws(KernelError) -> (String, String?) in
                (member, try inventory.driver(of: member))
            }
            let inTheWay = members.filter { $0.1 != nil && $0.1 != "vfio-pci" }.map(\.0)
            guard inTheWay.isEmpty else { throw .groupNotViable(group: number, devicesInTheWay: inTheWay) }
            let group = try VFIOGroup(number: number, syscalls: syscalls)
            do throws(KernelError) {
                guard try group.status().isViable else { throw .groupNotViable(group: number, devicesInTheWay: []) }
                try group.setContainer(container)
                groups[number] = group
                if !isIOMMUSet { try setUpIOMMU() }
            } catch {
                if groups[number] != nil { try? group.unsetContainer() }
                groups[number] = nil
                group.close()
                throw error
            }
        }
        devices[address] = try groups[number]!.openDevice(address)
        deviceGroups[address] = number
    }

    /// SET_IOMMU (nesting when the kernel accepts it, else type1v2), GET_INFO, then MAP_DMA.
    private func setUpIOMMU() throws(KernelError) {
        var nestingAccepted = false
        if try container.checkExtension(VFIO_TYPE1_NESTING_IOMMU) {
            // CHECK_EXTENSION says 1 even without nesting hardware; SET_IOMMU answers EINVAL then.
            do throws(KernelError) {
                try container.setIOMMU(VFIO_TYPE1_NESTING_IOMMU)
                nestingAccepted = true
            } catch where error.errno == .EINVAL {}
        }
        if !nestingAccepted { try container.setIOMMU(VFIO_TYPE1v2_IOMMU) }
        isIOMMUSet = true
        nesting = try container.info().nesting
        for (region, vaddr) in mapped {
            try container.mapDMA(vaddr: vaddr, iova: region.guestAddress, size: region.size)
        }
    }

    /// Detaches `address`; the last device of a group takes the group out of the container.
    public func detach(_ address: String) throws(KernelError) {
        guard let device = devices.removeValue(forKey: address) else { return }
        device.close()
        guard let number = deviceGroups.removeValue(forKey: address), let group = groups[number] else { return }
        let stillOpen = deviceGroups.values.contains(number)
        if !stillOpen {
            try group.unsetContainer()
            group.close()
            groups[number] = nil
            if groups.isEmpty {
                isIOMMUSet = false  // the kernel resets the container's IOMMU with its last group
                nesting = nil
            }
        }
    }

    /// Requires the nesting ABI on this container, or says why not (terminal).
    private func requireNesting() throws(KernelError) -> NestingInfo {
        guard isIOMMUSet else {
            throw .unsupported(capability: "guest page-table binding", detail: "no device is attached to the VM's container yet")
        }
        guard let nesting, nesting.canBindPageTables else {
            throw .unsupported(capability: "guest page-table binding",
                               detail: "VFIO_IOMMU_GET_INFO on this container advertises no nesting capability")
        }
        return nesting
    }

    /// Allocates a host PASID within the host's width (or `range`).
    public func allocatePASID(in range: ClosedRange<UInt32>? = nil) throws(KernelError) -> UInt32 {
        let nesting = try requireNesting()
        return try container.allocatePASID(in: range ?? 1...UInt32((1 << Int(nesting.pasidBits)) - 1))
    }

    /// Frees a host PASID.
    public func freePASID(_ pasid: UInt32) throws(KernelError) {
        _ = try requireNesting()
        try container.freePASIDs(in: pasid...pasid)
    }

    /// Binds a guest page table (after checking the container advertised nesting).
    public func bind(_ bind: GuestPageTableBind) throws(KernelError) {
        _ = try requireNesting()
        try container.bindPageTable(bind)
    }

    /// Unbinds a guest page table.
    public func unbind(_ bind: GuestPageTableBind) throws(KernelError) {
        _ = try requireNesting()
        try container.unbindPageTable(bind)
    }

    /// Replaces the table bound to `old.hostPASID` with `new` (the guest switched tables).
    public func rebind(from old: GuestPageTableBind, to new: GuestPageTableBind) throws(KernelError) {
        try unbind(old)
        try bind(new)
    }

    /// Releases devices, groups, the container (the kernel drops mappings and bindings) and guest memory.
    public func close() {
        for device in devices.values { device.close() }
        devices.removeAll()
        deviceGroups.removeAll()
        for group in groups.values { group.close() }
        groups.removeAll()
        container.close()
        for (region, vaddr) in mapped { _ = syscalls.munmap(address: vaddr, length: Int(region.size)) }
        mapped.removeAll()
        isIOMMUSet = false
        nesting = nil
    }
}
