/// Host PASIDs and guest page-table binding through the container's nesting ABI. Single-call
/// operations change nothing when they fail; the multi-step ones undo what they did.
extension VMContext {
    /// Requires the nesting ABI on this container, or says why not (terminal).
    func requireNesting() throws(KernelError) -> NestingInfo {
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

    /// Allocates a host PASID (within `range`, else the host's width) and binds `table(pasid)`
    /// to it; returns what was bound. If the bind fails, the PASID is freed again.
    public func bindOnNewPASID(in range: ClosedRange<UInt32>? = nil,
                               _ table: (UInt32) -> GuestPageTableBind) throws(KernelError) -> GuestPageTableBind {
        var rollback = Rollback()
        do throws(KernelError) {
            let pasid = try allocatePASID(in: range)
            rollback.add { [container] () throws(KernelError) in try container.freePASIDs(in: pasid...pasid) }
            let bind = table(pasid)
            try container.bindPageTable(bind)
            rollback.commit()
            return bind
        } catch {
            throw rollback.undo(after: error)
        }
    }

    /// Unbinds a guest page table.
    public func unbind(_ bind: GuestPageTableBind) throws(KernelError) {
        _ = try requireNesting()
        try container.unbindPageTable(bind)
    }

    /// Replaces the table bound to `old.hostPASID` with `new` (the guest switched tables):
    /// unbinds `old`, binds `new`; if `new` cannot be bound, binds `old` again, so the PASID
    /// keeps translating through the table it had.
    public func rebind(from old: GuestPageTableBind, to new: GuestPageTableBind) throws(KernelError) {
        _ = try requireNesting()
        var rollback = Rollback()
        do throws(KernelError) {
            try container.unbindPageTable(old)
            rollback.add { [container] () throws(KernelError) in try container.bindPageTable(old) }
            try container.bindPageTable(new)
            rollback.commit()
        } catch {
            throw rollback.undo(after: error)
        }
    }
}
