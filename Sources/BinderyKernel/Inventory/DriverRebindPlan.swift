/// What managed rebinding of one device to vfio-pci will change, read before any sysfs write:
/// the driver to give the device back to. Persist it before `DriverBinder.apply`, so a crash
/// between the sysfs writes cannot lose it.
public struct DriverRebindPlan: Sendable, Equatable, Codable {
    /// The device's PCI address.
    public var address: String
    /// The driver it was bound to before Bindery took it (nil: none).
    public var originalDriver: String?

    /// A plan from its parts (e.g. reloaded from where the caller persisted it).
    public init(address: String, originalDriver: String?) {
        self.address = address
        self.originalDriver = originalDriver
    }

    /// False when the device was already on vfio-pci: there is nothing to give back.
    public var takesTheDevice: Bool { originalDriver != DriverBinder.vfioDriver }
}
