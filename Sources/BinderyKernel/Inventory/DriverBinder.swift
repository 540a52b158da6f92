/// Managed rebinding to vfio-pci, as libvirt's managed hostdev does, in the way that survives
/// races: `driver_override`, unbind, `drivers_probe`, then check the `driver` link. Never
/// `new_id` (it would grab every device with that id).
///
/// Crash-safe use: `plan` (reads only), persist `plan.originalDriver` unless one is already
/// recorded for the device, then `apply`; to give the device back, `restore` to the recorded
/// driver. A plan made after a crash in the middle of `apply` sees no driver or vfio-pci, not
/// the original: the first recorded plan is the one that counts.
public struct DriverBinder: Sendable {
    /// The driver Bindery binds managed devices to.
    public static let vfioDriver = "vfio-pci"

    /// Where sysfs is, and how it is read and written.
    public let inventory: SysfsInventory

    /// A binder over `inventory`'s sysfs.
    public init(inventory: SysfsInventory) { self.inventory = inventory }

    var syscalls: any Syscalls { inventory.syscalls }
    var probePath: String { inventory.root + "/bus/pci/drivers_probe" }

    /// Reads, without writing anything, which driver `address` has now: the one to persist
    /// before `apply` and to give the device back to later.
    public func plan(_ address: String) throws(KernelError) -> DriverRebindPlan {
        DriverRebindPlan(address: address, originalDriver: try inventory.driver(of: address))
    }

    /// Binds `plan.address` to vfio-pci (nothing to do when it is there already). On failure,
    /// gives the device back to `plan.originalDriver`, then throws the failing step's error
    /// (`rollbackIncomplete` when giving it back failed too).
    public func apply(_ plan: DriverRebindPlan) throws(KernelError) {
        let address = plan.address
        let current = try inventory.driver(of: address)
        if current == Self.vfioDriver { return }
        let directory = inventory.path(of: address)
        do throws(KernelError) {
            try syscalls.write(directory + "/driver_override", Self.vfioDriver)
            if current != nil { try syscalls.write(directory + "/driver/unbind", address) }
            try syscalls.write(probePath, address)
            let now = try inventory.driver(of: address)
            guard now == Self.vfioDriver else { throw .rebindFailed(device: address, expected: Self.vfioDriver, found: now) }
        } catch {
            var rollback = Rollback()
            rollback.add { () throws(KernelError) in try restore(address, to: plan.originalDriver) }
            throw rollback.undo(after: error)
        }
    }

    /// Binds `address` to vfio-pci and returns the driver it had before (nil: none), for
    /// callers with nothing to persist; a daemon uses `plan`, persists, then `apply`.
    @discardableResult
    public func bindToVFIO(_ address: String) throws(KernelError) -> String? {
        let plan = try plan(address)
        try apply(plan)
        return plan.originalDriver
    }

    /// Gives `address` back to `original` (nil: leave it unbound), clearing the override.
    /// Each step checks what is there first, so after a failure (or a crash) calling it again
    /// finishes the job.
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
