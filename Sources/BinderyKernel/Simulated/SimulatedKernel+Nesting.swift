import CBinderyKernel

/// The type1 nesting ABI, implemented strictly: short `argsz`, unknown flags, version,
/// format, non-zero padding → EINVAL; a PASID already bound → EBUSY; no PASID left → ENOSPC.
extension SimulatedKernel {
    static let addressWidths: Set<UInt32> = [39, 48, 57]

    func pasidRequest(_ container: SimContainer, _ bytes: RawBytes) -> Int32 {
        guard bytes.u32(0) >= 16 else { return -Errno.EINVAL.code }
        let flags = bytes.u32(4), minimum = bytes.u32(8), maximum = bytes.u32(12)
        let limit = UInt32((1 << host.pasidBits) - 1)
        guard minimum > 0, minimum <= maximum, maximum <= limit else { return -Errno.EINVAL.code }
        switch flags {
        case UInt32(VFIO_IOMMU_FLAG_ALLOC_PASID):
            var candidate = max(minimum, lowestPossiblyFreePASID)
            while candidate <= maximum {
                if allocatedPASIDs[candidate] == nil {
                    allocatedPASIDs[candidate] = container.id
                    container.pasids.insert(candidate)
                    if candidate == lowestPossiblyFreePASID { lowestPossiblyFreePASID = candidate + 1 }
                    return Int32(candidate)
                }
                if candidate == maximum { break }
                candidate += 1
            }
            return -Errno.ENOSPC.code
        case UInt32(VFIO_IOMMU_FLAG_FREE_PASID):
            let owned = container.pasids.filter { (minimum...maximum).contains($0) }
            let bound = devices.values.contains { device in owned.contains { device.boundTables[$0] != nil } }
            if bound { return -Errno.EBUSY.code }
            for pasid in owned {
                allocatedPASIDs[pasid] = nil
                container.pasids.remove(pasid)
                lowestPossiblyFreePASID = min(lowestPossiblyFreePASID, pasid)
            }
            return 0
        default:
            return -Errno.EINVAL.code
        }
    }

    func nestingOp(_ container: SimContainer, _ bytes: RawBytes) -> Int32 {
        let argsz = Int(bytes.u32(0)), flags = bytes.u32(4)
        let headerSize = 8
        guard argsz >= headerSize, flags & ~UInt32(VFIO_IOMMU_NESTING_OP_MASK) == 0 else { return -Errno.EINVAL.code }
        let op = flags & UInt32(VFIO_IOMMU_NESTING_OP_MASK)
        switch op {
        case UInt32(VFIO_IOMMU_NESTING_OP_BIND_PGTBL), UInt32(VFIO_IOMMU_NESTING_OP_UNBIND_PGTBL):
            let payload = RawBytes(bytes.base.advanced(by: headerSize))
            guard case let .success(bind) = GuestPageTableBind.decode(payload, available: argsz - headerSize) else {
                return -Errno.EINVAL.code
            }
            guard Self.addressWidths.contains(bind.addressWidth), bind.addressWidth <= UInt32(host.addressWidth),
                  bind.pageTable & Self.pageMask == 0, bind.hostPASID <= UInt64(UInt32.max),
                  container.pasids.contains(UInt32(bind.hostPASID)) else { return -Errno.EINVAL.code }
            let hostPASID = UInt32(bind.hostPASID)
            let members = devices.values.filter { container.groups.contains($0.spec.group) && $0.spec.pasidWidth > 0 }
            guard !members.isEmpty else { return -Errno.ENODEV.code }
            if op == UInt32(VFIO_IOMMU_NESTING_OP_BIND_PGTBL) {
                if members.contains(where: { $0.boundTables[hostPASID] != nil }) { return -Errno.EBUSY.code }
                guard members.allSatisfy({ hostPASID < UInt32(1 << $0.spec.pasidWidth) }) else { return -Errno.EINVAL.code }
                for device in members { device.boundTables[hostPASID] = (container.id, bind) }
            } else {
                guard members.contains(where: { $0.boundTables[hostPASID] != nil }) else { return -Errno.EINVAL.code }
                for device in members { device.boundTables[hostPASID] = nil }
            }
            return 0
        case UInt32(VFIO_IOMMU_NESTING_OP_CACHE_INVLD):
            return -Errno.EOPNOTSUPP.code  // not advertised in features
        default:
            return -Errno.EINVAL.code
        }
    }
}
