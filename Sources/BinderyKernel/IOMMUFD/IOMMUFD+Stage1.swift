/// Binding a guest page table to a PASID through iommufd: allocate the stage-1 HWPT, attach
/// it (replacing the PASID's table atomically), destroy the table it replaced — undone in
/// reverse when a step fails, so the PASID keeps translating through the table it had.
extension IOMMUFD {
    /// `HWPT_ALLOC` of a VT-d stage-1 for `pageTable` on `space.parent`, attach it to `pasid`
    /// of `device` (replacing `replacing`, the PASID's current stage-1, if any), then
    /// `IOMMU_DESTROY` of `replacing`. Returns the new stage-1's id. On failure the new table
    /// is detached (or `replacing` attached again) and destroyed before the error is thrown.
    public func attachStage1(_ device: VFIODevice, in space: NestingSpace, pasid: UInt32, pageTable: UInt64,
                             addressWidth: UInt32, flags: UInt64 = 0, replacing: UInt32? = nil) throws(KernelError) -> UInt32 {
        var rollback = Rollback()
        do throws(KernelError) {
            let stage1 = try allocateStage1(deviceID: space.deviceID, parent: space.parent, pageTable: pageTable,
                                            addressWidth: addressWidth, flags: flags, forPASID: true)
            rollback.add { [self] () throws(KernelError) in try destroy(stage1) }
            try attach(device, to: stage1, pasid: pasid)
            rollback.add { [self] () throws(KernelError) in
                if let replacing { try attach(device, to: replacing, pasid: pasid) } else { try detach(device, pasid: pasid) }
            }
            if let replacing { try destroy(replacing) }
            rollback.commit()
            return stage1
        } catch {
            throw rollback.undo(after: error)
        }
    }
}
