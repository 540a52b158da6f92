/// Detaching a device: close its fd and, for the last device of its group, take the group
/// out of the container (type1 tears the IOMMU down with the last group).
extension VMContext {
    /// Detaches `address`: closes its device fd; the last device of a group takes the group out
    /// of the container and closes it, and the last group out leaves the container without an
    /// IOMMU (the kernel drops its mappings, PASIDs and bindings; the next attach sets it up
    /// again). If the group cannot leave, the device is opened again, so the context is as
    /// before, and the error is thrown.
    public func detach(_ address: String) throws(KernelError) {
        guard let number = deviceGroups[address] else { return }
        var rollback = Rollback()
        do throws(KernelError) {
            if let device = devices.removeValue(forKey: address) {
                device.close()
                rollback.add { [self] () throws(KernelError) in
                    guard let group = groups[number] else { return }
                    devices[address] = try group.openDevice(address)
                }
            }
            let groupStaysInUse = deviceGroups.contains { $0.key != address && $0.value == number }
            if !groupStaysInUse, let group = groups[number] {
                try group.unsetContainer()
                group.close()
                groups[number] = nil
                if groups.isEmpty { forgetIOMMU() }
            }
            deviceGroups[address] = nil
            rollback.commit()
        } catch {
            throw rollback.undo(after: error)
        }
    }
}
