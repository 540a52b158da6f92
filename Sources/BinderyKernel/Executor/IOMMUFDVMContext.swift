import CBinderyKernel
import Glibc

/// One VM's IOMMU context on iommufd (`/dev/iommu`), in QEMU's order: each device's VFIO cdev
/// is bound to the VM's iommufd; the first device gets the IOAS with guest memory mapped and
/// the nesting parent (stage 2) over it, the others attach to the same parent; each binding is
/// a VT-d stage-1 HWPT on the parent attached at its host PASID (attaching again replaces it
/// atomically). iommufd allocates no PASIDs: the context keeps each device's in use. Closing it
/// releases everything in the kernel.
public final class IOMMUFDVMContext: @unchecked Sendable {
    /// The kernel boundary.
    public let syscalls: any Syscalls
    /// Where devices and their cdevs are found.
    public let inventory: SysfsInventory
    /// The VM's iommufd.
    public let iommufd: IOMMUFD
    /// Guest memory regions.
    public let memory: [GuestMemoryRegion]

    struct Device {
        let cdev: VFIODevice
        let id: UInt32
        let pasidBits: Int
        let nesting: Bool
    }

    var mapped: [(region: GuestMemoryRegion, vaddr: UInt64)] = []
    var devices: [String: Device] = [:]
    var space: IOMMUFD.NestingSpace?
    var stage1: [String: [UInt32: UInt32]] = [:]   // device → host PASID → stage-1 HWPT
    var pasids: [String: Set<UInt32>] = [:]        // device → host PASIDs in use
    private var perPASIDRefusal: String?                    // what the kernel answered to a PASID attach

    /// Opens an iommufd for a VM and maps its memory into this process (the IOAS mapping waits
    /// for the first device: the nesting parent is allocated against one).
    public convenience init(syscalls: any Syscalls, inventory: SysfsInventory, memory: [GuestMemoryRegion]) throws(KernelError) {
        try self.init(syscalls: syscalls, inventory: inventory, memory: memory, iommufd: try IOMMUFD(syscalls: syscalls))
    }

    /// A context around `iommufd` (new, or adopted), mapping guest memory into this process.
    init(syscalls: any Syscalls, inventory: SysfsInventory, memory: [GuestMemoryRegion], iommufd: IOMMUFD) throws(KernelError) {
        self.syscalls = syscalls
        self.inventory = inventory
        self.memory = memory
        self.iommufd = iommufd
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

    /// Binding as the kernel answered it: nesting from `IOMMU_GET_HW_INFO`, per-PASID attach
    /// from the answer to the first PASID attach.
    public var pageTableBinding: PageTableBinding {
        guard !devices.isEmpty else { return .unknown }
        guard devices.values.contains(where: \.nesting) else {
            return .unavailable(reason: "IOMMU_GET_HW_INFO reports no nesting (VT-d ecap NEST) for the attached devices")
        }
        if let perPASIDRefusal { return .unavailable(reason: perPASIDRefusal) }
        return .available(addressWidth: 57, pasidBits: devices.values.map(\.pasidBits).max() ?? 0, perPASID: true)
    }

    /// Binds `address`'s cdev, reads its hardware info, and attaches it to the nesting parent
    /// (set up with guest memory for the first device). Undone in reverse when a step fails.
    public func attach(_ address: String) throws(KernelError) {
        if devices[address] != nil { return }
        guard let path = inventory.vfioCdevPath(of: address) else {
            throw .unsupported(capability: "VFIO cdev", detail: "\(address) has no vfio-dev/ entry: is it bound to vfio-pci on a kernel with VFIO_DEVICE_CDEV?")
        }
        let cdev = try VFIODevice(cdev: path, address: address, syscalls: syscalls)
        do throws(KernelError) {
            let id = try iommufd.bind(cdev)
            let info = try iommufd.hardwareInfo(deviceID: id)
            let nesting = info.extendedCapabilityRegister & (1 << 26) != 0
            if let space {
                try iommufd.attach(cdev, to: space.parent)
            } else {
                guard nesting else {
                    throw KernelError.unsupported(capability: "nested translation",
                                                  detail: "IOMMU_GET_HW_INFO for \(address) reports no VT-d nesting (ecap NEST)")
                }
                space = try iommufd.setUpNesting(cdev, deviceID: id, memory: mapped.map {
                    IOMMUFD.MemoryMapping(vaddr: $0.vaddr, iova: $0.region.guestAddress, length: $0.region.size)
                })
            }
            devices[address] = Device(cdev: cdev, id: id, pasidBits: Int(info.maxPASIDLog2), nesting: nesting)
        } catch {
            cdev.close()   // closing the cdev unbinds it from the iommufd
            throw error
        }
    }

    /// Detaches `address`: its stage-1 tables first, then the device, then its cdev.
    public func detach(_ address: String) throws(KernelError) {
        guard let device = devices[address] else { return }
        for (pasid, table) in (stage1[address] ?? [:]).sorted(by: { $0.key < $1.key }) {
            try iommufd.detach(device.cdev, pasid: pasid)
            try iommufd.destroy(table)
            stage1[address]?[pasid] = nil
        }
        try iommufd.detach(device.cdev)
        device.cdev.close()
        devices[address] = nil
        pasids[address] = nil
    }

    private func device(_ address: String) throws(KernelError) -> Device {
        guard let device = devices[address] else {
            throw .unsupported(capability: "guest page-table binding", detail: "\(address) is not attached to this VM's iommufd")
        }
        return device
    }

    /// The lowest free host PASID on `address` (within `range`, else its width).
    public func allocatePASID(on address: String, in range: ClosedRange<UInt32>?) throws(KernelError) -> UInt32 {
        let device = try device(address)
        guard device.pasidBits > 0 else {
            throw .unsupported(capability: "PASID", detail: "IOMMU_GET_HW_INFO reports no PASID support for \(address)")
        }
        let limit = UInt32((1 << min(device.pasidBits, 31)) - 1)
        let allowed = range ?? 1...limit
        guard allowed.lowerBound >= 1, allowed.upperBound <= limit else {
            throw .ioctl(call: "PASID allocation", errno: .EINVAL, resource: "\(address) PASIDs \(allowed) (width \(device.pasidBits) bits)")
        }
        let used = pasids[address, default: []]
        guard let free = allowed.first(where: { !used.contains($0) }) else {
            throw .ioctl(call: "PASID allocation", errno: .ENOSPC, resource: "\(address) PASIDs \(allowed)")
        }
        pasids[address, default: []].insert(free)
        return free
    }

    /// Frees a host PASID of `address`.
    public func freePASID(_ pasid: UInt32, on address: String) throws(KernelError) {
        pasids[address]?.remove(pasid)
    }

    /// VT-d stage-1 flags from the nesting payload's: iommufd's `IOMMU_HWPT_DATA_VTD_S1` has
    /// SRE and EAFE (and WPE); the payload's PCD, PWT, EMTE and CD have no equivalent.
    static func stage1Flags(_ table: GuestPageTableBind) throws(KernelError) -> UInt64 {
        let expressible = UInt64(IOMMU_SVA_VTD_GPASID_SRE) | UInt64(IOMMU_SVA_VTD_GPASID_EAFE)
        guard table.vtdFlags & ~expressible == 0, table.pat == 0, table.emt == 0 else {
            throw .unsupported(capability: "VT-d stage-1 fields",
                               detail: "iommufd's IOMMU_HWPT_DATA_VTD_S1 carries only sre and eafe; pcd, pwt, emte, cd, pat and emt cannot be bound here")
        }
        var flags: UInt64 = 0
        if table.vtdFlags & UInt64(IOMMU_SVA_VTD_GPASID_SRE) != 0 { flags |= UInt64(IOMMU_VTD_S1_SRE.rawValue) }
        if table.vtdFlags & UInt64(IOMMU_SVA_VTD_GPASID_EAFE) != 0 { flags |= UInt64(IOMMU_VTD_S1_EAFE.rawValue) }
        return flags
    }

    private func attachStage1(_ table: GuestPageTableBind, on address: String, replacing old: UInt32?) throws(KernelError) {
        let device = try device(address)
        guard let space, device.nesting else {
            throw .unsupported(capability: "nested translation", detail: "IOMMU_GET_HW_INFO for \(address) reports no VT-d nesting (ecap NEST)")
        }
        if let perPASIDRefusal { throw .unsupported(capability: "per-PASID attach", detail: perPASIDRefusal) }
        let pasid = UInt32(table.hostPASID)
        do throws(KernelError) {
            let hwpt = try iommufd.attachStage1(device.cdev, in: IOMMUFD.NestingSpace(deviceID: device.id, ioas: space.ioas, parent: space.parent),
                                                pasid: pasid, pageTable: table.pageTable, addressWidth: table.addressWidth,
                                                flags: try Self.stage1Flags(table), replacing: old)
            stage1[address, default: [:]][pasid] = hwpt
        } catch {
            // 6.7-6.14 know no PASID-capable HWPT and no PASID attach: IOMMU_HWPT_ALLOC with
            // IOMMU_HWPT_ALLOC_PASID is EOPNOTSUPP (measured on 6.12: it comes first), and
            // VFIO_DEVICE_ATTACH_IOMMUFD_PT with ATTACH_PASID is EINVAL.
            if old == nil, stage1[address]?.isEmpty ?? true {
                if error.call == IoctlRequest.hwptAlloc.name, error.errno == .EOPNOTSUPP {
                    perPASIDRefusal = "IOMMU_HWPT_ALLOC with IOMMU_HWPT_ALLOC_PASID answered EOPNOTSUPP: this kernel has no PASID-capable stage-1 tables and attaches them only device-wide (per-PASID attach arrived in 6.15)"
                } else if error.call == IoctlRequest.deviceAttachPT.name, error.errno == .EINVAL {
                    perPASIDRefusal = "VFIO_DEVICE_ATTACH_IOMMUFD_PT with VFIO_DEVICE_ATTACH_PASID answered EINVAL: this kernel attaches stage-1 tables only device-wide (per-PASID attach arrived in 6.15)"
                }
                if let perPASIDRefusal { throw .unsupported(capability: "per-PASID attach", detail: perPASIDRefusal) }
            }
            throw error
        }
    }

    /// Binds `table` at its host PASID of `address`.
    public func bind(_ table: GuestPageTableBind, on address: String) throws(KernelError) {
        try attachStage1(table, on: address, replacing: nil)
    }

    /// Replaces the stage-1 at `old.hostPASID` with one for `new`, atomically.
    public func rebind(from old: GuestPageTableBind, to new: GuestPageTableBind, on address: String) throws(KernelError) {
        guard let current = stage1[address]?[UInt32(old.hostPASID)] else { return try bind(new, on: address) }
        try attachStage1(new, on: address, replacing: current)
    }

    /// Detaches the stage-1 at `table.hostPASID` and destroys it.
    public func unbind(_ table: GuestPageTableBind, on address: String) throws(KernelError) {
        let device = try device(address)
        let pasid = UInt32(table.hostPASID)
        guard let hwpt = stage1[address]?[pasid] else { return }
        try iommufd.detach(device.cdev, pasid: pasid)
        stage1[address]?[pasid] = nil
        try iommufd.destroy(hwpt)
    }


    /// The iommufd (guest memory in its IOAS) and each device's cdev, bound and attached, duplicated.
    public func makeHandOff() throws(KernelError) -> HandOff {
        guard let space else {
            throw .unsupported(capability: "hand-off", detail: "the VM's iommufd has no device attached yet, so no IOAS with guest memory")
        }
        var builder = HandOffBuilder(syscalls: syscalls)
        try builder.add(iommufd.fd, name: HandOff.Kind.iommufd.rawValue, kind: .iommufd)
        for (address, device) in devices.sorted(by: { $0.key < $1.key }) {
            let info: VFIODevice.Info
            do { info = try device.cdev.info() } catch { builder.discard(); throw error }
            try builder.add(device.cdev.fd, name: HandOff.name(.vfioCdev, device: address), kind: .vfioCdev, device: address,
                            info: info, iommufdDeviceID: device.id)
        }
        try builder.addMemory(memory)
        return HandOff(path: .iommufd, descriptors: builder.descriptors, ioas: space.ioas, hwpt: space.parent, memory: memory)
    }

    /// Closes every cdev and the iommufd (the kernel drops every object) and unmaps guest memory.
    public func close() {
        for device in devices.values { device.cdev.close() }
        devices.removeAll()
        stage1.removeAll()
        pasids.removeAll()
        space = nil
        iommufd.close()
        for (region, vaddr) in mapped { _ = syscalls.munmap(address: vaddr, length: Int(region.size)) }
        mapped.removeAll()
    }
}

extension IOMMUFDVMContext: VMIOMMUContext {}
