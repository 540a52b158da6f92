import CBinderyKernel
import Glibc

/// One VM's IOMMU context on a type1 container: its guest memory (mmapped and DMA-mapped once
/// the first group is attached), its devices, and — where the host advertises nesting — its
/// PASIDs and bound guest page tables. Every flow that fails leaves the kernel and this context
/// as they were before the attempt, so a retry succeeds once the fault is gone. Closing it
/// releases everything in the kernel.
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
    public internal(set) var nesting: NestingInfo?

    /// Guest memory mapped into this process, with its address here.
    var mapped: [(region: GuestMemoryRegion, vaddr: UInt64)] = []
    /// Open groups, each in the container.
    var groups: [Int: VFIOGroup] = [:]
    /// Open device fds.
    var devices: [String: VFIODevice] = [:]
    /// Each attached device's group, remembered at attach: a device that vanished from sysfs
    /// must still be detachable. An entry without a device fd is a detach that closed the
    /// device but could not take its group out of the container; detaching again finishes it.
    var deviceGroups: [String: Int] = [:]
    /// The container's IOMMU is set and guest memory DMA-mapped. Type1 tears the IOMMU down
    /// when the last group leaves the container, so outside a flow this is `!groups.isEmpty`.
    var isIOMMUSet = false

    /// Opens a container for a VM and maps its memory into this process (DMA mapping waits
    /// for the first device: type1 needs a group before `SET_IOMMU`). On failure, unmaps what
    /// it mapped and closes the container.
    public convenience init(syscalls: any Syscalls, inventory: SysfsInventory, memory: [GuestMemoryRegion]) throws(KernelError) {
        try self.init(syscalls: syscalls, inventory: inventory, memory: memory, container: try VFIOContainer(syscalls: syscalls))
    }

    /// A context around `container` (new, or adopted), mapping guest memory into this process.
    init(syscalls: any Syscalls, inventory: SysfsInventory, memory: [GuestMemoryRegion], container: VFIOContainer) throws(KernelError) {
        self.syscalls = syscalls
        self.inventory = inventory
        self.memory = memory
        self.container = container
        do throws(KernelError) {
            for region in memory { mapped.append((region, try region.map(with: syscalls))) }
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

    /// Forgets the container's IOMMU after its last group left: the kernel tore it down
    /// (mappings, PASIDs, bindings), and the next group must set it up again.
    func forgetIOMMU() {
        isIOMMUSet = false
        nesting = nil
        container.iommuType = nil
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
        forgetIOMMU()
    }
}

extension VMContext {
    /// The container (its IOMMU set, guest memory mapped) and each device's fd, duplicated.
    /// Refused before the first device: until then the container has no IOMMU to use.
    public func makeHandOff() throws(KernelError) -> HandOff {
        guard isIOMMUSet else {
            throw .unsupported(capability: "hand-off", detail: "the VM's container has no device attached yet, so no IOMMU and no DMA mappings")
        }
        var builder = HandOffBuilder(syscalls: syscalls)
        try builder.add(container.fd, name: HandOff.Kind.vfioContainer.rawValue, kind: .vfioContainer)
        for (address, device) in devices.sorted(by: { $0.key < $1.key }) {
            let info: VFIODevice.Info
            do { info = try device.info() } catch { builder.discard(); throw error }
            try builder.add(device.fd, name: HandOff.name(.vfioDevice, device: address), kind: .vfioDevice, device: address,
                            group: deviceGroups[address], info: info)
        }
        try builder.addMemory(memory)
        return HandOff(path: .vfioType1, descriptors: builder.descriptors, memory: memory)
    }
}
