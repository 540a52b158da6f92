import CBinderyKernel

/// The type1 nesting ABI of the guest-PASID design: PASID allocation and guest page-table
/// binding through the container. Only call these when `info().nesting` advertised them.
extension VFIOContainer {
    /// `VFIO_IOMMU_PASID_REQUEST` with ALLOC: a host PASID in `range` (ENOSPC when none is free).
    public func allocatePASID(in range: ClosedRange<UInt32>) throws(KernelError) -> UInt32 {
        var request = vfio_iommu_type1_pasid_request()
        request.argsz = UInt32(MemoryLayout<vfio_iommu_type1_pasid_request>.size)
        request.flags = UInt32(VFIO_IOMMU_FLAG_ALLOC_PASID)
        request.range.min = range.lowerBound
        request.range.max = range.upperBound
        return UInt32(try syscalls.call(fd, .pasidRequest, &request, on: "\(resource) PASID range \(range.lowerBound)...\(range.upperBound)"))
    }

    /// `VFIO_IOMMU_PASID_REQUEST` with FREE for the PASIDs in `range`.
    public func freePASIDs(in range: ClosedRange<UInt32>) throws(KernelError) {
        var request = vfio_iommu_type1_pasid_request()
        request.argsz = UInt32(MemoryLayout<vfio_iommu_type1_pasid_request>.size)
        request.flags = UInt32(VFIO_IOMMU_FLAG_FREE_PASID)
        request.range.min = range.lowerBound
        request.range.max = range.upperBound
        try syscalls.call(fd, .pasidRequest, &request, on: "\(resource) PASID range \(range.lowerBound)...\(range.upperBound)")
    }

    /// `VFIO_IOMMU_NESTING_OP` with BIND_PGTBL.
    public func bindPageTable(_ bind: GuestPageTableBind) throws(KernelError) {
        try nestingOp(UInt32(VFIO_IOMMU_NESTING_OP_BIND_PGTBL), bind)
    }

    /// `VFIO_IOMMU_NESTING_OP` with UNBIND_PGTBL.
    public func unbindPageTable(_ bind: GuestPageTableBind) throws(KernelError) {
        try nestingOp(UInt32(VFIO_IOMMU_NESTING_OP_UNBIND_PGTBL), bind)
    }

    private func nestingOp(_ op: UInt32, _ bind: GuestPageTableBind) throws(KernelError) {
        let headerSize = MemoryLayout<vfio_iommu_type1_nesting_op>.size
        let dataSize = MemoryLayout<iommu_gpasid_bind_data>.size
        let buffer = KernelBuffer(count: headerSize + dataSize)
        buffer.raw.set(0, u32: UInt32(headerSize + dataSize))
        buffer.raw.set(4, u32: op)
        var data = bind.cStruct
        withUnsafeBytes(of: &data) { buffer.bytes.baseAddress!.advanced(by: headerSize).copyMemory(from: $0.baseAddress!, byteCount: dataSize) }
        try syscalls.call(fd, .nestingOp, buffer: buffer.bytes, on: "\(resource) host PASID \(bind.hostPASID)")
    }
}
