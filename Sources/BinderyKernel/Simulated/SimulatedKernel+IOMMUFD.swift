import CBinderyKernel

/// The iommufd subset: device binding, GET_HW_INFO, IOAS, paging, nesting-parent and VT-d
/// stage-1 HWPTs, per-PASID attach (replacing atomically), detach and destroy — with the errnos
/// a real 6.12 gave in `make kernel-test` (KERNEL.md): an IOAS takes any IOVA alignment until an
/// HWPT exists over it, reserves the MSI window once a device is attached through it, and an
/// attach to an IOAS creates an automatic HWPT whose id the kernel returns.
extension SimulatedKernel {
    func iommufdIoctl(_ context: SimIOMMUFD, _ request: IoctlRequest, _ bytes: RawBytes) -> Int32 {
        let size = Int(bytes.u32(0))
        switch request {
        case .getHWInfo:
            // Extensible struct: 32 bytes (up to __reserved) at least; bytes past the 40 this
            // kernel knows must be zero.
            guard size >= 32 else { return -Errno.EINVAL.code }
            if size > 40 && !bytes.isZero(40, count: size - 40) { return -Errno.E2BIG.code }
            guard bytes.u32(4) == 0, bytes.isZero(29, count: 3) else { return -Errno.EOPNOTSUPP.code }
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
            if size >= 40 {
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
            guard flags & UInt32(IOMMU_IOAS_MAP_FIXED_IOVA.rawValue) != 0, length > 0 else { return -Errno.EINVAL.code }
            // Alignment 1 until an HWPT (a domain) exists over the IOAS, page size after.
            if hasDomain(over: ioas, in: context), (vaddr | length | iova) & Self.pageMask != 0 { return -Errno.EINVAL.code }
            if hasDevice(through: ioas, in: context), Self.overlapsMSIWindow(iova, length) { return -Errno.EINVAL.code }
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
        // IOMMU_HWPT_ALLOC_PASID arrived with per-PASID attach (6.15): unknown before, EOPNOTSUPP.
        let known = UInt32(IOMMU_HWPT_ALLOC_NEST_PARENT.rawValue) | (host.pasidAttach ? UInt32(IOMMU_HWPT_ALLOC_PASID.rawValue) : 0)
        guard flags & ~known == 0, bytes.u32(20) == 0 else { return -Errno.EOPNOTSUPP.code }
        guard context.devices[deviceID] != nil else { return -Errno.ENOENT.code }
        guard let parent = context.objects[parentID] else { return -Errno.EINVAL.code }
        let id: UInt32
        switch (parent, dataType) {
        case let (.ioas(mappings), IOMMU_HWPT_DATA_NONE.rawValue):
            let nestParent = flags & UInt32(IOMMU_HWPT_ALLOC_NEST_PARENT.rawValue) != 0
            if nestParent && !host.hardwareNesting { return -Errno.EOPNOTSUPP.code }
            if mappings.contains(where: \.isUnaligned) { return -Errno.EADDRINUSE.code }
            id = context.allocateID()
            context.objects[id] = nestParent ? .nestingParent(ioas: parentID) : .paging(ioas: parentID, automatic: false)
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
            case let .nestingParent(ioas), let .paging(ioas, _): return ioas == id
            case let .stage1(parent, _, _, _): return parent == id
            case .ioas: return false
            }
        }
        return attached || referenced
    }

    func cdevIoctl(_ device: SimDevice, _ request: IoctlRequest, _ bytes: RawBytes) -> Int32 {
        switch request {
        case .deviceGetInfo:
            // A cdev answers nothing but BIND until it is bound.
            guard device.iommufdBinding != nil else { return -Errno.EINVAL.code }
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
                let table: UInt32, ioas: UInt32
                switch object {
                case let .ioas(mappings):
                    // The kernel makes (or reuses) an automatic paging HWPT and returns its id.
                    if mappings.contains(where: \.isUnaligned) { return -Errno.EADDRINUSE.code }
                    ioas = tableID
                    table = context.objects.first { id, object in
                        guard case .paging(tableID, true) = object else { return false }
                        return devices.values.contains { $0.iommufdBinding?.context == context.id && $0.attachedTable == id }
                    }?.key ?? context.allocateID()
                case let .paging(over, _), let .nestingParent(over):
                    ioas = over
                    table = tableID
                default:
                    return -Errno.EINVAL.code
                }
                // Attaching reserves the MSI window in the IOAS: a mapping there is in the way.
                if !hasDevice(through: ioas, in: context), case let .ioas(mappings)? = context.objects[ioas],
                   mappings.contains(where: { Self.overlapsMSIWindow($0.iova, $0.size) }) {
                    return -Errno.EADDRINUSE.code
                }
                if context.objects[table] == nil { context.objects[table] = .paging(ioas: ioas, automatic: true) }
                device.attachedTable = table
                bytes.set(8, u32: table)
                dropUnusedAutomaticTables(in: context)
            }
            return 0
        case .deviceDetachPT:
            guard bytes.u32(0) >= 12, bytes.u32(4) & ~UInt32(VFIO_DEVICE_ATTACH_PASID) == 0 else { return -Errno.EINVAL.code }
            if bytes.u32(4) & UInt32(VFIO_DEVICE_ATTACH_PASID) != 0 {
                guard device.pasidTables.removeValue(forKey: bytes.u32(8)) != nil else { return -Errno.ENOENT.code }
            } else {
                guard device.pasidTables.isEmpty else { return -Errno.EBUSY.code }
                device.attachedTable = nil
                if let context = boundContext(of: device) { dropUnusedAutomaticTables(in: context) }
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
        let context = boundContext(of: device)
        if let binding = device.iommufdBinding, let context {
            context.devices[binding.deviceID] = nil
        }
        device.iommufdBinding = nil
        device.attachedTable = nil
        device.pasidTables.removeAll()
        if let context { dropUnusedAutomaticTables(in: context) }
    }

    /// An automatic HWPT lives while a device is attached to it.
    private func dropUnusedAutomaticTables(in context: SimIOMMUFD) {
        let attached = Set(devices.values.filter { $0.iommufdBinding?.context == context.id }.compactMap(\.attachedTable))
        for (id, object) in context.objects {
            if case .paging(_, true) = object, !attached.contains(id) { context.objects[id] = nil }
        }
    }

    /// The IOAS behind a page-table object (itself for an IOAS).
    private func ioas(of id: UInt32, in context: SimIOMMUFD) -> UInt32? {
        switch context.objects[id] {
        case .ioas?: return id
        case let .paging(ioas, _)?, let .nestingParent(ioas)?: return ioas
        case let .stage1(parent, _, _, _)?: return ioas(of: parent, in: context)
        case nil: return nil
        }
    }

    /// An HWPT (an IOMMU domain) exists over `ioas`: its IOVAs must then be page aligned.
    private func hasDomain(over ioas: UInt32, in context: SimIOMMUFD) -> Bool {
        context.objects.values.contains { object in
            switch object {
            case let .paging(over, _), let .nestingParent(over): return over == ioas
            default: return false
            }
        }
    }

    /// A device is attached to a table over `ioas`: its MSI window is reserved there.
    private func hasDevice(through ioas: UInt32, in context: SimIOMMUFD) -> Bool {
        devices.values.contains { device in
            device.iommufdBinding?.context == context.id && device.attachedTable.flatMap { self.ioas(of: $0, in: context) } == ioas
        }
    }

    static func overlapsMSIWindow(_ iova: UInt64, _ length: UInt64) -> Bool {
        SimMapping(iova: iova, size: length, vaddr: 0).overlaps(msiWindow.lowerBound, UInt64(msiWindow.count))
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
