/// A device's nested translation in an iommufd context, set up in QEMU's order and undone in
/// reverse when a step fails.
extension IOMMUFD {
    /// Guest memory for the nesting parent: where it is in this process and in the guest.
    public struct MemoryMapping: Sendable, Equatable {
        /// Address in this process.
        public var vaddr: UInt64
        /// Guest physical address (the IOVA).
        public var iova: UInt64
        /// Length in bytes.
        public var length: UInt64

        /// A mapping from its parts.
        public init(vaddr: UInt64, iova: UInt64, length: UInt64) {
            self.vaddr = vaddr
            self.iova = iova
            self.length = length
        }
    }

    /// What `setUpNesting` made: the IOAS holding guest memory and the nesting parent over it,
    /// to which the device is attached.
    public struct NestingSpace: Sendable, Equatable {
        /// The device's id in this context.
        public var deviceID: UInt32
        /// The IOAS with guest memory.
        public var ioas: UInt32
        /// The nesting-parent HWPT (stage 2) the device is attached to.
        public var parent: UInt32
    }

    /// For a device bound to this context: `IOAS_ALLOC`, `HWPT_ALLOC(NEST_PARENT)` over it,
    /// attach the device to the parent, then `IOAS_MAP` each region. If a step fails, the
    /// steps before it are undone in reverse order and its error is thrown.
    public func setUpNesting(_ device: VFIODevice, deviceID: UInt32, memory: [MemoryMapping]) throws(KernelError) -> NestingSpace {
        var rollback = Rollback()
        do throws(KernelError) {
            let ioas = try allocateIOAS()
            rollback.add { [self] () throws(KernelError) in try destroy(ioas) }
            let parent = try allocateNestingParent(deviceID: deviceID, ioas: ioas)
            rollback.add { [self] () throws(KernelError) in try destroy(parent) }
            try attach(device, to: parent)
            rollback.add { [self] () throws(KernelError) in try detach(device) }
            for region in memory {
                try map(ioas: ioas, vaddr: region.vaddr, iova: region.iova, length: region.length)
                rollback.add { [self] () throws(KernelError) in try unmap(ioas: ioas, iova: region.iova, length: region.length) }
            }
            rollback.commit()
            return NestingSpace(deviceID: deviceID, ioas: ioas, parent: parent)
        } catch {
            throw rollback.undo(after: error)
        }
    }
}
