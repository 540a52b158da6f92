/// What a `VMContext` holds, to compare before and after a flow. File descriptor numbers are
/// left out: a rollback may reopen a device on another number.
struct VMContextState: Equatable, CustomStringConvertible {
    /// Devices with an open fd.
    var attachedDevices: [String]
    /// Every device's group, including detaches not finished.
    var deviceGroups: [String: Int]
    /// Open groups, and whether each fd is still open.
    var groups: [Int: Bool]
    /// The IOMMU is set and memory DMA-mapped.
    var isIOMMUSet: Bool
    /// The IOMMU type the container object believes is set.
    var iommuType: Int32?
    /// The nesting capability remembered.
    var nesting: NestingInfo?
    /// Guest memory mapped into the process: guest address → address here.
    var mappedMemory: [UInt64: UInt64]

    var description: String {
        "devices \(attachedDevices) groups \(groups.keys.sorted()) deviceGroups \(deviceGroups.sorted { $0.key < $1.key }) "
            + "IOMMU \(isIOMMUSet ? "set" : "unset") type \(iommuType.map(String.init) ?? "none") "
            + "nesting \(nesting != nil) memory \(mappedMemory.count)"
    }
}

extension VMContext {
    /// The context's state now.
    var state: VMContextState {
        VMContextState(attachedDevices: attachedDevices, deviceGroups: deviceGroups,
                       groups: groups.mapValues { $0.fd >= 0 }, isIOMMUSet: isIOMMUSet, iommuType: container.iommuType,
                       nesting: nesting,
                       mappedMemory: Dictionary(mapped.map { ($0.region.guestAddress, $0.vaddr) }, uniquingKeysWith: { a, _ in a }))
    }
}
