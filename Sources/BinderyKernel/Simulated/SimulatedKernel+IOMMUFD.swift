import CBinderyKernel

/// The iommufd subset: device binding, GET_HW_INFO, IOAS, nesting-parent and VT-d stage-1
/// HWPTs, per-PASID attach (replacing atomically), detach and destroy.
extension SimulatedKernel {
    func iommufdIoctl(_ context: SimIOMMUFD, _ request: IoctlRequest, _ bytes: RawBytes) -> Int32 {
        let size = Int(bytes.u32(0))
        switch request {
        case .getHWInfo:
            // As 6.12 answered: the struct is 40 bytes; below 32 is EINVAL; a larger struct is
            // fine while the bytes the kernel does not know are zero, else E2BIG.
            guard size >= 32 else { return -Errno.EINVAL.code }
            if size > 40 && !bytes.isZero(40, count: size - 40) { return -Errno.E2BIG.code }
            guard bytes.u32(4) == 0 else { return -Errno.EOPNOTSUPP.code }
            guard let address = context.devices[bytes.u32(8)], let device = devices[address] else { return -Errno.ENOENT.code }
            let dataLength = Int(bytes.u32(12))
            var vtd = [UInt8](repeating: 0, count: 24)
            vtd.put(8, u64: SimulatedKernel.capabilityRegister(addressWidth: host.addressWidth))
            vtd.put(16, u64: SimulatedKernel.extendedCapabilityRegister(pasidBits: host.pasidBits, nesting: host.hardwareNesting))
            if dataLength > 0, let out = UnsafeMutableRawPointer(bitPattern: UInt(bytes.u64(16))) {
                out.copyMemory(from: vtd, byteCount: min(dataLength, vtd.count))
            }
            bytes.set(12, u32: UInt32(vtd.count))
            bytes.set(24, u32: UInt32(IOMMU_HW_INFO_TYPE_INTEL_VTD.rawValue))
            bytes.set(28, u8: UInt8(device.spec.pasidWidth))
            if size >= 40 {   // out_capabilities, for callers that know it
                bytes.set(32, u64: device.spec.pasidWidth > 0
                          ? UInt64(IOMMU_HW_CAP_PCI_PASID_EXEC.rawValue | IOMMU_HW_CAP_PCI_PASID_PRIV.rawValue) : 0)
            }
            return 0
        case .ioasAlloc:
            guard size >= 12 else { return -Errno.EINVAL.code }
            guard bytes.u32(4) == 0 else { return -Errno.EOPNOTSUPP.code }
            let id = context.allocateID()
            context.objects[id] = .ioas(mappings: [])
            bytes.set(8, u32: id)
            return 0
        case .ioasMap:
            guard size >= 40 else { return -Errno.EINVAL.code }
            let flags = bytes.u32(4), ioas = bytes.u32(8)
            let known = UInt32(IOMMU_IOAS_MAP_FIXED_IOVA.rawValue | IOMMU_IOAS_MAP_READABLE.rawValue | IOMMU_IOAS_MAP_WRITEABLE.rawValue)
            guard flags & ~known == 0, bytes.u32(12) == 0 else { return -Errno.EOPNOTSUPP.code }
            guard case var .ioas(mappings)? = context.objects[ioas] else { return -Errno.ENOENT.code }
            let vaddr = bytes.u64(16), length = bytes.u64(24), iova = bytes.u64(32)
            guard flags & UInt32(IOMMU_IOAS_MAP_FIXED_IOVA.rawValue) != 0, length > 0,
                  (vaddr | length | iova) & Self.pageMask == 0 else { return -Errno.EINVAL.code }
            if mappings.contains(where: { $0.overlaps(iova, length) }) { return -Errno.EEXIST.code }
            mappings.append(SimMapping(iova: iova, size: length, vaddr: vaddr))
            context.objects[ioas] = .ioas(mappings: mappings)
            return 0
        case .ioasUnmap:
            guard size >= 24 else { return -Errno.EINVAL.code }
            let ioas = bytes.u32(4), iova = bytes.u64(8), length = bytes.u64(16)
            guard case var .ioas(mappings)? = context.objects[ioas] else { return -Errno.ENOENT.code }
            let touched = mappings.filter { $0.overlaps(iova, length) }
            guard !touched.isEmpty else { return -Errno.ENOENT.code }
            if touched.contains(where: { $0.iova < iova || $0.last > iova + length - 1 }) { return -Errno.EINVAL.code }
            mappings.removeAll { $0.overlaps(iova, length) }
            context.objects[ioas] = .ioas(mappings: mappings)
            bytes.set(16, u64: touched.reduce(0) { $0 + $1.size })
            return 0
        case .hwptAlloc:
            return allocateHWPT(context, bytes)
        case .iommuDestroy:
            guard size >= 8 else { return -Errno.EINVAL.code }
            let id = bytes.u32(4)
            guard context.objects[id] != nil else { return -Errno.ENOENT.code }
            if isInUse(id, in: context) { return -Errno.EBUSY.code }
            context.objects[id] = nil
            return 0
        default:
            return -Errno.ENOTTY.code
        }
    }

    private func allocateHWPT(_ context: SimIOMMUFD, _ bytes: RawBytes) -> Int32 {
        guard bytes.u32(0) >= 40 else { return -Errno.EINVAL.code }
        let flags = bytes.u32(4), deviceID = bytes.u32(8), parentID = bytes.u32(12)
        let dataType = bytes.u32(24), dataLength = Int(bytes.u32(28)), dataPointer = bytes.u64(32)
        let known = UInt32(IOMMU_HWPT_ALLOC_NEST_PARENT.rawValue | IOMMU_HWPT_ALLOC_PASID.rawValue)
        guard flags & ~known == 0, bytes.u32(20) == 0 else { return -Errno.EOPNOTSUPP.code }
        guard context.devices[deviceID] != nil else { return -Errno.ENOENT.code }
        guard let parent = context.objects[parentID] else { return -Errno.ENOENT.code }
        let id: UInt32
        switch (parent, dataType) {
        case (.ioas, IOMMU_HWPT_DATA_NONE.rawValue):
            guard flags & UInt32(IOMMU_HWPT_ALLOC_NEST_PARENT.rawValue) != 0 else { return -Errno.EOPNOTSUPP.code }
            guard host.hardwareNesting else { return -Errno.EOPNOTSUPP.code }
            id = context.allocateID()
            context.objects[id] = .nestingParent(ioas: parentID)
        case (.nestingParent, IOMMU_HWPT_DATA_VTD_S1.rawValue):
            guard flags & UInt32(IOMMU_HWPT_ALLOC_NEST_PARENT.rawValue) == 0 else { return -Errno.EINVAL.code }
            guard dataLength >= 24, let data = UnsafeMutableRawPointer(bitPattern: UInt(dataPointer)) else { return -Errno.EINVAL.code }
            let s1 = RawBytes(data)
            if dataLength > 24 && !s1.isZero(24, count: dataLength - 24) { return -Errno.E2BIG.code }
            let s1Flags = s1.u64(0), pageTable = s1.u64(8), width = s1.u32(16)
            let knownS1 = UInt64(IOMMU_VTD_S1_SRE.rawValue | IOMMU_VTD_S1_EAFE.rawValue | IOMMU_VTD_S1_WPE.rawValue)
            guard s1Flags & ~knownS1 == 0, s1.u32(20) == 0 else { return -Errno.EOPNOTSUPP.code }
            guard Self.addressWidths.contains(width), width <= UInt32(host.addressWidth), pageTable & Self.pageMask == 0 else {
                return -Errno.EINVAL.code
            }
            id = context.allocateID()
            context.objects[id] = .stage1(parent: parentID, pageTable: pageTable, addressWidth: width, flags: s1Flags)
        default:
            return -Errno.EINVAL.code
        }
        bytes.set(16, u32: id)
        return 0
    }

    private func isInUse(_ id: UInt32, in context: SimIOMMUFD) -> Bool {
        let attached = devices.values.contains { device in
            device.iommufdBinding?.context == context.id && (device.attachedTable == id || device.pasidTables.values.contains(id))
        }
        let referenced = context.objects.values.contains { object in
            switch object {
            case let .nestingParent(ioas): return ioas == id
            case let .stage1(parent, _, _, _): return parent == id
            case .ioas: return false
            }
        }
        return attached || referenced
    }

    func cdevIoctl(_ device: SimDevice, _ request: IoctlRequest, _ bytes: RawBytes) -> Int32 {
        switch request {
        case .deviceGetInfo:
            return deviceInfo(bytes)
        case .deviceBindIOMMUFD:
            guard bytes.u32(0) >= 16, bytes.u32(4) == 0 else { return -Errno.EINVAL.code }
            guard device.iommufdBinding == nil else { return -Errno.EINVAL.code }
            guard case let .iommufd(context)? = files[bytes.s32(8)] else { return -Errno.EBADF.code }
            let id = context.allocateID()
            context.devices[id] = device.spec.address
            device.iommufdBinding = (context.id, id)
            bytes.set(12, u32: id)
            return 0
        case .deviceAttachPT:
            // 6.7-6.14 know no ATTACH_PASID flag: any flag is EINVAL there (measured on 6.12).
            let knownFlags = host.pasidAttach ? UInt32(VFIO_DEVICE_ATTACH_PASID) : 0
            guard bytes.u32(0) >= 16, bytes.u32(4) & ~knownFlags == 0 else { return -Errno.EINVAL.code }
            guard let context = boundContext(of: device) else { return -Errno.EINVAL.code }
            let tableID = bytes.u32(8)
            guard let object = context.objects[tableID] else { return -Errno.ENOENT.code }
            if bytes.u32(4) & UInt32(VFIO_DEVICE_ATTACH_PASID) != 0 {
                let pasid = bytes.u32(12)
                guard device.spec.pasidWidth > 0 else { return -Errno.EOPNOTSUPP.code }
                guard pasid > 0, pasid < UInt32(1 << device.spec.pasidWidth) else { return -Errno.EINVAL.code }
                guard case .stage1 = object, device.attachedTable != nil else { return -Errno.EINVAL.code }
                device.pasidTables[pasid] = tableID
            } else {
                guard case .nestingParent = object else {
                    if case .ioas = object { device.attachedTable = tableID; return 0 }
                    return -Errno.EINVAL.code
                }
                device.attachedTable = tableID
            }
            return 0
        case .deviceDetachPT:
            guard bytes.u32(0) >= 12, bytes.u32(4) & ~UInt32(VFIO_DEVICE_ATTACH_PASID) == 0 else { return -Errno.EINVAL.code }
            if bytes.u32(4) & UInt32(VFIO_DEVICE_ATTACH_PASID) != 0 {
                guard device.pasidTables.removeValue(forKey: bytes.u32(8)) != nil else { return -Errno.ENOENT.code }
            } else {
                guard device.pasidTables.isEmpty else { return -Errno.EBUSY.code }
                device.attachedTable = nil
            }
            return 0
        default:
            return -Errno.ENOTTY.code
        }
    }

    private func boundContext(of device: SimDevice) -> SimIOMMUFD? {
        guard let binding = device.iommufdBinding else { return nil }
        for case let .iommufd(context) in files.values where context.id == binding.context { return context }
        return nil
    }

    func unbindFromIOMMUFD(_ device: SimDevice) {
        if let binding = device.iommufdBinding, let context = boundContext(of: device) {
            context.devices[binding.deviceID] = nil
        }
        device.iommufdBinding = nil
        device.attachedTable = nil
        device.pasidTables.removeAll()
    }

    /// Closing /dev/iommu destroys every object and detaches every device bound to it.
    func releaseIOMMUFD(_ context: SimIOMMUFD) {
        for device in devices.values where device.iommufdBinding?.context == context.id {
            device.iommufdBinding = nil
            device.attachedTable = nil
            device.pasidTables.removeAll()
        }
        context.objects.removeAll()
        context.devices.removeAll()
    }
}
