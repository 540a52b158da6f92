/// Managed rebinding to vfio-pci, as libvirt's managed hostdev does, in the way that survives
/// races: `driver_override`, unbind, `drivers_probe`, then check the `driver` link. Never
/// `new_id` (it would grab every device with that id).
public struct DriverBinder: Sendable {
    /// Where sysfs is, and how it is read and written.
    public let inventory: SysfsInventory

    /// A binder over `inventory`'s sysfs.
    public init(inventory: SysfsInventory) { self.inventory = inventory }

    var syscalls: any Syscalls { inventory.syscalls }
    var probePath: String { inventory.root + "/bus/pci/drivers_probe" }

    /// Binds `address` to vfio-pci and returns the driver it had before (nil: none).
    /// On failure, tries to give the device back to that driver, then throws.
    @discardableResult
    public func bindToVFIO(_ address: String) throws(KernelError) -> String? {
        let original = try inventory.driver(of: address)
        if original == "vfio-pci" { return original }
        let directory = inventory.path(of: address)
        do throws(KernelError) {
            try syscalls.write(directory + "/driver_override", "vfio-pci")
            if original != nil { try syscalls.write(directory + "/driver/unbind", address) }
            try syscalls.write(probePath, address)
            let now = try inventory.driver(of: address)
            guard now == "vfio-pci" else { throw .rebindFailed(device: address, expected: "vfio-pci", found: now) }
            return original
        } catch {
            try? restore(address, to: original)
            throw error
        }
    }

    /// Gives `address` back to `original` (nil: leave it unbound), clearing the override.
    public func restore(_ address: String, to original: String?) throws(KernelError) {
        let directory = inventory.path(of: address)
        if let current = try inventory.driver(of: address), current != original {
            try syscalls.write(directory + "/driver/unbind", address)
        }
        try syscalls.write(directory + "/driver_override", "\n")
        if original != nil, try inventory.driver(of: address) == nil {
            try syscalls.write(probePath, address)
        }
        let now = try inventory.driver(of: address)
        guard now == original else { throw .rebindFailed(device: address, expected: original ?? "no driver", found: now) }
    }
}
