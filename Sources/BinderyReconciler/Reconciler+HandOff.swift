import BinderyKernel

/// What a VMM receives, re-exported for the layers above the reconciler.
public typealias HandOff = BinderyKernel.HandOff

extension Reconciler {
    /// Duplicates of `vmID`'s IOMMU context and device descriptors, for its VMM. The caller
    /// sends them and closes the duplicates (`closeHandOff`).
    public func makeHandOff(for vmID: String) throws -> HandOff {
        guard let context = kernel.context(vmID) else {
            throw HostKernelError(reason: "\(vmID) has no IOMMU context in the kernel yet: it opens when the first device assigned to the VM is attached")
        }
        return try kernel.withVM(vmID) { () throws(KernelError) -> HandOff in try context.makeHandOff() }
    }

    /// Closes the duplicates in `handOff` (they were sent, or could not be).
    public func closeHandOff(_ handOff: HandOff) {
        handOff.close(with: kernel.syscalls)
    }
}
