import CBinderyKernel

/// Attaching a device: open its group, check viability, join the container, set the IOMMU
/// up and DMA-map guest memory (first group only), open the device — undone in reverse
/// order when any step fails.
extension VMContext {
    /// Attaches `address`: opens its group (refusing a group with members on other drivers,
    /// naming them), joins the container, sets the IOMMU and maps guest memory on the first
    /// group, and opens the device. On failure everything this attempt did is undone (regions
    /// unmapped, group out of the container and closed, the IOMMU forgotten) before the
    /// failing step's error is thrown.
    public func attach(_ address: String) throws(KernelError) {
        if devices[address] != nil { return }
        let device = try inventory.device(address)
        guard let number = device.iommuGroup else {
            throw .unsupported(capability: "IOMMU group", detail: "\(address) has no IOMMU group")
        }
        var rollback = Rollback()
        do throws(KernelError) {
            let group: VFIOGroup
            if let open = groups[number] { group = open } else { group = try joinGroup(number, rollback: &rollback) }
            devices[address] = try group.openDevice(address)
            deviceGroups[address] = number
            rollback.commit()
        } catch {
            throw rollback.undo(after: error)
        }
    }

    /// Opens group `number` (its members on vfio-pci or on no driver), puts it in the
    /// container, and sets up the IOMMU if it is the first group; registers each undo.
    private func joinGroup(_ number: Int, rollback: inout Rollback) throws(KernelError) -> VFIOGroup {
        var inTheWay: [String] = []
        for member in try inventory.members(ofGroup: number) {
            if let driver = try inventory.driver(of: member), driver != "vfio-pci" { inTheWay.append(member) }
        }
        guard inTheWay.isEmpty else { throw .groupNotViable(group: number, devicesInTheWay: inTheWay) }
        let group = try VFIOGroup(number: number, syscalls: syscalls)
        // Closing the group fd also takes it out of the container, should the unset below fail.
        rollback.add { group.close() }
        guard try group.status().isViable else { throw .groupNotViable(group: number, devicesInTheWay: []) }
        try group.setContainer(container)
        groups[number] = group
        rollback.add { [self] () throws(KernelError) in
            groups[number] = nil
            try group.unsetContainer()
        }
        if !isIOMMUSet { try setUpIOMMU(rollback: &rollback) }
        return group
    }

    /// SET_IOMMU (nesting when the kernel accepts it, else type1v2), GET_INFO, then MAP_DMA
    /// of each region; registers each undo.
    private func setUpIOMMU(rollback: inout Rollback) throws(KernelError) {
        var nestingAccepted = false
        if try container.checkExtension(VFIO_TYPE1_NESTING_IOMMU) {
            // CHECK_EXTENSION says 1 even without nesting hardware; SET_IOMMU answers EINVAL then.
            do throws(KernelError) {
                try container.setIOMMU(VFIO_TYPE1_NESTING_IOMMU)
                nestingAccepted = true
            } catch where error.errno == .EINVAL {}
        }
        if !nestingAccepted { try container.setIOMMU(VFIO_TYPE1v2_IOMMU) }
        isIOMMUSet = true
        // Type1 has no "unset IOMMU": the kernel tears it down when this, the only group,
        // leaves the container (the next undo); here the context only forgets it.
        rollback.add { [self] in forgetIOMMU() }
        nesting = try container.info().nesting
        for (region, vaddr) in mapped {
            try container.mapDMA(vaddr: vaddr, iova: region.guestAddress, size: region.size)
            rollback.add { [container] () throws(KernelError) in
                try container.unmapDMA(iova: region.guestAddress, size: region.size)
            }
        }
    }
}
