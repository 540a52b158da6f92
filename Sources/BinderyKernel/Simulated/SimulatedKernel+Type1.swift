import CBinderyKernel

/// VFIO type1: containers and groups, with the errnos measured on 6.1 and 6.12 (KERNEL.md).
extension SimulatedKernel {
    static let msiWindow: ClosedRange<UInt64> = 0xfee0_0000...0xfeef_ffff
    static let pageMask: UInt64 = 0xfff
    static let type1: Int32 = 1, type1v2: Int32 = 3, type1Nesting: Int32 = 6

    func containerValueIoctl(_ container: SimContainer, _ request: IoctlRequest, _ value: UInt) -> Int32 {
        switch request {
        case .getAPIVersion: return VFIO_API_VERSION
        case .checkExtension:
            return [Self.type1, Self.type1v2, Self.type1Nesting].contains(Int32(truncatingIfNeeded: value)) ? 1 : 0
        case .setIOMMU:
            let type = Int32(truncatingIfNeeded: value)
            if container.iommuType != nil || container.groups.isEmpty { return -Errno.EINVAL.code }
            guard [Self.type1, Self.type1v2, Self.type1Nesting].contains(type) else { return -Errno.ENODEV.code }
            if type == Self.type1Nesting && !host.type1Nesting { return -Errno.EINVAL.code }
            container.iommuType = type
            return 0
        default:
            return container.iommuType == nil ? -Errno.EINVAL.code : -Errno.ENOTTY.code
        }
    }

    func containerIoctl(_ container: SimContainer, _ request: IoctlRequest, _ bytes: RawBytes) -> Int32 {
        guard container.iommuType != nil else { return -Errno.EINVAL.code }
        switch request {
        case .iommuGetInfo: return getInfo(container, bytes)
        case .mapDMA: return mapDMA(container, bytes)
        case .unmapDMA: return unmapDMA(container, bytes)
        case .pasidRequest where container.iommuType == Self.type1Nesting: return pasidRequest(container, bytes)
        case .nestingOp where container.iommuType == Self.type1Nesting: return nestingOp(container, bytes)
        default: return -Errno.ENOTTY.code
        }
    }

    /// Two-pass GET_INFO: too small an argsz learns the size needed and `cap_offset` 0.
    private func getInfo(_ container: SimContainer, _ bytes: RawBytes) -> Int32 {
        let argsz = Int(bytes.u32(0))
        guard argsz >= 16 else { return -Errno.EINVAL.code }
        var caps: [[UInt8]] = []
        // IOVA ranges: all of the address space but the MSI window.
        var iova = [UInt8](repeating: 0, count: 16 + 32)
        iova.put(8, u32: 2)
        iova.put(16, u64: 0); iova.put(24, u64: Self.msiWindow.lowerBound - 1)
        iova.put(32, u64: Self.msiWindow.upperBound + 1); iova.put(40, u64: (1 << UInt64(host.addressWidth)) - 1)
        caps.append(header(IOMMUInfo.CapabilityID.iovaRange) + iova.dropFirst(8))
        var available = [UInt8](repeating: 0, count: 8)
        available.put(0, u32: UInt32(max(0, host.dmaMappingLimit - container.mappings.count)))
        caps.append(header(IOMMUInfo.CapabilityID.dmaAvailable) + available)
        if container.iommuType == Self.type1Nesting {
            var info = [UInt8](repeating: 0, count: NestingInfo.size)
            info.put(0, u32: UInt32(NestingInfo.size))
            info.put(8, u32: UInt32(IOMMU_PASID_FORMAT_INTEL_VTD))
            info.put(12, u32: UInt32(IOMMU_NESTING_FEAT_BIND_PGTBL))
            info.put(16, u16: UInt16(host.addressWidth))
            info.put(18, u16: UInt16(host.pasidBits))
            info.put(40, u64: SimulatedKernel.capabilityRegister(addressWidth: host.addressWidth))
            info.put(48, u64: SimulatedKernel.extendedCapabilityRegister(pasidBits: host.pasidBits, nesting: true))
            caps.append(header(IOMMUInfo.CapabilityID.nesting) + info)
        }
        let base = 24
        let total = base + caps.reduce(0) { $0 + $1.count }
        bytes.set(4, u32: UInt32(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS))
        bytes.set(8, u64: 0x4020_1000)  // 4 KiB, 2 MiB, 1 GiB
        if argsz < total {
            bytes.set(0, u32: UInt32(total))
            if argsz >= base { bytes.set(16, u32: 0) }
            return 0
        }
        var offset = base
        for (index, cap) in caps.enumerated() {
            for (i, byte) in cap.enumerated() { bytes.set(offset + i, u8: byte) }
            let next = index + 1 < caps.count ? offset + cap.count : 0
            bytes.set(offset + 4, u32: UInt32(next))
            offset += cap.count
        }
        bytes.set(16, u32: UInt32(base))
        return 0
    }

    private func header(_ id: UInt16) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.put(0, u16: id)
        bytes.put(2, u16: 1)
        return bytes
    }

    private func mapDMA(_ container: SimContainer, _ bytes: RawBytes) -> Int32 {
        guard bytes.u32(0) >= 32 else { return -Errno.EINVAL.code }
        let flags = bytes.u32(4), vaddr = bytes.u64(8), iova = bytes.u64(16), size = bytes.u64(24)
        let known = UInt32(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
        guard flags & ~known == 0, size > 0, (iova | vaddr | size) & Self.pageMask == 0,
              iova <= UInt64.max - (size - 1) else { return -Errno.EINVAL.code }
        let mapping = SimMapping(iova: iova, size: size, vaddr: vaddr)
        if mapping.overlaps(Self.msiWindow.lowerBound, UInt64(Self.msiWindow.count)) { return -Errno.EINVAL.code }
        if container.mappings.contains(where: { $0.overlaps(iova, size) }) { return -Errno.EEXIST.code }
        if container.mappings.count >= host.dmaMappingLimit { return -Errno.ENOSPC.code }
        container.mappings.append(mapping)
        return 0
    }

    private func unmapDMA(_ container: SimContainer, _ bytes: RawBytes) -> Int32 {
        guard bytes.u32(0) >= 24 else { return -Errno.EINVAL.code }
        let flags = bytes.u32(4), iova = bytes.u64(8), size = bytes.u64(16)
        guard flags == 0, size > 0, (iova | size) & Self.pageMask == 0 else { return -Errno.EINVAL.code }
        let touched = container.mappings.filter { $0.overlaps(iova, size) }
        if touched.contains(where: { $0.iova < iova || $0.last > iova + size - 1 }) { return -Errno.EINVAL.code }
        container.mappings.removeAll { $0.overlaps(iova, size) }
        bytes.set(16, u64: touched.reduce(0) { $0 + $1.size })
        return 0
    }

    func groupIoctl(_ group: SimGroup, _ request: IoctlRequest, _ bytes: RawBytes) -> Int32 {
        switch request {
        case .groupGetStatus:
            guard bytes.u32(0) >= 8 else { return -Errno.EINVAL.code }
            var flags: UInt32 = 0
            if isViable(group.number) { flags |= UInt32(VFIO_GROUP_FLAGS_VIABLE) }
            if group.container != nil { flags |= UInt32(VFIO_GROUP_FLAGS_CONTAINER_SET) }
            bytes.set(4, u32: flags)
            return 0
        case .groupSetContainer:
            guard group.container == nil else { return -Errno.EINVAL.code }
            guard let file = files[bytes.s32(0)] else { return -Errno.EBADF.code }
            guard case let .container(container) = file else { return -Errno.EINVAL.code }
            // 6.x claims DMA ownership of the group here: a member on a DMA-using driver refuses.
            guard isViable(group.number) else { return -Errno.EBUSY.code }
            if container.iommuType != nil && container.groups.isEmpty { return -Errno.EINVAL.code }
            container.groups.insert(group.number)
            group.container = container
            return 0
        case .groupGetDeviceFD:
            guard let container = group.container, container.iommuType != nil, isViable(group.number) else {
                return -Errno.EINVAL.code
            }
            var name = [UInt8]()
            while name.count < 64, case let byte = bytes.u8(name.count), byte != 0 { name.append(byte) }
            let address = String(decoding: name, as: UTF8.self)
            guard let device = devices[address], device.spec.group == group.number else { return -Errno.ENODEV.code }
            let fd = nextFD
            nextFD += 1
            files[fd] = .groupDevice(group: group.number, address: address)
            group.openDevices += 1
            return fd
        default:
            return -Errno.ENOTTY.code
        }
    }

    func unsetContainer(_ group: SimGroup) -> Int32 {
        guard let container = group.container else { return -Errno.EINVAL.code }
        guard group.openDevices == 0 else { return -Errno.EBUSY.code }
        detach(group, from: container)
        return 0
    }

    /// Every member bound to vfio-pci or to nothing.
    func isViable(_ number: Int) -> Bool {
        devices.values.filter { $0.spec.group == number }.allSatisfy { $0.driver == nil || $0.driver == "vfio-pci" }
    }

    /// Takes a group out of its container; the last group out resets the container's IOMMU.
    func detach(_ group: SimGroup, from container: SimContainer) {
        for device in devices.values where device.spec.group == group.number {
            device.boundTables = device.boundTables.filter { $0.value.container != container.id }
        }
        container.groups.remove(group.number)
        group.container = nil
        if container.groups.isEmpty {
            container.iommuType = nil
            container.mappings.removeAll()
            releasePASIDs(of: container)
        }
    }

    /// Closing a container drops everything made through it.
    func releaseContainer(_ container: SimContainer) {
        for number in container.groups {
            if let group = groups[number] { detach(group, from: container) }
        }
        container.mappings.removeAll()
        releasePASIDs(of: container)
    }

    func releasePASIDs(of container: SimContainer) {
        for pasid in container.pasids {
            allocatedPASIDs[pasid] = nil
            lowestPossiblyFreePASID = min(lowestPossiblyFreePASID, pasid)
        }
        container.pasids.removeAll()
        for device in devices.values {
            device.boundTables = device.boundTables.filter { $0.value.container != container.id }
        }
    }

    /// A VT-d capability register with MGAW for `addressWidth` and 4/5-level SAGAW.
    static func capabilityRegister(addressWidth: Int) -> UInt64 {
        let sagaw: UInt64 = addressWidth >= 57 ? 0b1100 : 0b0100
        return UInt64(addressWidth - 1) << 16 | sagaw << 8 | (addressWidth >= 57 ? 1 << 62 : 0)
    }

    /// A VT-d extended capability register: PASID (bit 40) with its size, scalable mode
    /// (bit 43), nested translation (bit 26), first-level translation (bit 47).
    static func extendedCapabilityRegister(pasidBits: Int, nesting: Bool) -> UInt64 {
        var ecap: UInt64 = 1 << 40 | UInt64(max(pasidBits - 1, 0) & 0x1f) << 35 | 1 << 43
        if nesting { ecap |= 1 << 26 | 1 << 47 }
        return ecap
    }
}

extension Array where Element == UInt8 {
    mutating func put(_ offset: Int, u16 value: UInt16) {
        self[offset] = UInt8(value & 0xff)
        self[offset + 1] = UInt8(value >> 8)
    }
    mutating func put(_ offset: Int, u32 value: UInt32) {
        put(offset, u16: UInt16(value & 0xffff))
        put(offset + 2, u16: UInt16(value >> 16))
    }
    mutating func put(_ offset: Int, u64 value: UInt64) {
        put(offset, u32: UInt32(value & 0xffff_ffff))
        put(offset + 4, u32: UInt32(value >> 32))
    }
}
