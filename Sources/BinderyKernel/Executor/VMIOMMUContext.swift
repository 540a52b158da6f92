/// One VM's IOMMU context, whichever kernel interface binds its guest page tables: a type1
/// container with the nesting ABI (`VMContext`) or an iommufd context with nested HWPTs
/// (`IOMMUFDVMContext`). The reconciler speaks only this; which one a host gets is chosen once,
/// from what the kernel answered (`HostCapabilities.nesting.mechanism`).
public protocol VMIOMMUContext: AnyObject, Sendable {
    /// Addresses of the devices attached now.
    var attachedDevices: [String] { get }
    /// What binding guest page tables can do here now, or why it cannot (learned from the
    /// kernel's answers once a device is attached).
    var pageTableBinding: PageTableBinding { get }
    /// Attaches a device (bound to vfio-pci) to the VM's IOMMU context, mapping guest memory
    /// when the context first needs it.
    func attach(_ address: String) throws(KernelError)
    /// Detaches a device, undoing its bindings.
    func detach(_ address: String) throws(KernelError)
    /// A host PASID on `device` (within `range` when given, else the widths allowed).
    func allocatePASID(on device: String, in range: ClosedRange<UInt32>?) throws(KernelError) -> UInt32
    /// Gives a host PASID back.
    func freePASID(_ pasid: UInt32, on device: String) throws(KernelError)
    /// Binds `table` (at `table.hostPASID`) for `device`.
    func bind(_ table: GuestPageTableBind, on device: String) throws(KernelError)
    /// Replaces the table bound at `old.hostPASID` with `new`; on failure `old` stays bound.
    func rebind(from old: GuestPageTableBind, to new: GuestPageTableBind, on device: String) throws(KernelError)
    /// Unbinds `table`.
    func unbind(_ table: GuestPageTableBind, on device: String) throws(KernelError)
    /// The descriptors to keep in the service manager's fd store across a restart, by name
    /// (empty: this context is rebuilt instead).
    var keptDescriptors: [String: Int32] { get }
    /// Kernel object ids an adoption needs beside the kept descriptors (iommufd's), by name.
    var objectIDs: [String: UInt32] { get }
    /// Duplicates of the context's and its devices' descriptors for the VMM, with what each is.
    func makeHandOff() throws(KernelError) -> HandOff
    /// Releases everything in the kernel (closing the context's fds).
    func close()
}

/// What page-table binding a context offers: its limits, or why there is none.
public enum PageTableBinding: Sendable, Equatable {
    /// Binding works: tables up to `addressWidth` bits, host PASIDs of `pasidBits` bits;
    /// `perPASID` false means one table per device (attached device-wide).
    case available(addressWidth: Int, pasidBits: Int, perPASID: Bool)
    /// Nothing is attached yet, so the kernel has not said.
    case unknown
    /// The kernel refused or does not advertise it; `reason` says which call said so.
    case unavailable(reason: String)
}

extension VMContext: VMIOMMUContext {
    public var pageTableBinding: PageTableBinding {
        guard isMemoryMapped else { return .unknown }
        guard let nesting, nesting.canBindPageTables else {
            return .unavailable(reason: "VFIO_IOMMU_GET_INFO on the VM's container advertises no nesting capability")
        }
        return .available(addressWidth: Int(nesting.addressWidth), pasidBits: Int(nesting.pasidBits), perPASID: true)
    }

    public func allocatePASID(on device: String, in range: ClosedRange<UInt32>?) throws(KernelError) -> UInt32 {
        try allocatePASID(in: range)
    }

    public func freePASID(_ pasid: UInt32, on device: String) throws(KernelError) { try freePASID(pasid) }

    public func bind(_ table: GuestPageTableBind, on device: String) throws(KernelError) { try bind(table) }

    public func rebind(from old: GuestPageTableBind, to new: GuestPageTableBind, on device: String) throws(KernelError) {
        try rebind(from: old, to: new)
    }

    public func unbind(_ table: GuestPageTableBind, on device: String) throws(KernelError) { try unbind(table) }
}
