/// What the inventory says about a device (the store's copy of the kernel's view).
public struct DeviceSnapshot: Sendable, Equatable, Codable {
    /// PCI address.
    public var address: String
    /// Vendor id.
    public var vendorID: Int
    /// Device id.
    public var deviceID: Int
    /// Class code.
    public var classCode: Int
    /// IOMMU group.
    public var iommuGroup: Int?
    /// Bound driver.
    public var driver: String?
    /// NUMA node.
    public var numaNode: Int
    /// PASID capability.
    public var pasidSupported: Bool
    /// PASID width in bits.
    public var pasidWidth: Int
    /// ATS capability.
    public var atsSupported: Bool
    /// PRI capability.
    public var priSupported: Bool
    /// The device policy rule that refuses assigning it (nil: assignable).
    public var refusalRule: String?
    /// Why, in a sentence.
    public var refusalReason: String?

    /// A snapshot from its parts.
    public init(address: String, vendorID: Int, deviceID: Int, classCode: Int, iommuGroup: Int?, driver: String?,
                numaNode: Int, pasidSupported: Bool, pasidWidth: Int, atsSupported: Bool, priSupported: Bool,
                refusalRule: String? = nil, refusalReason: String? = nil) {
        self.refusalRule = refusalRule
        self.refusalReason = refusalReason
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.iommuGroup = iommuGroup
        self.driver = driver
        self.numaNode = numaNode
        self.pasidSupported = pasidSupported
        self.pasidWidth = pasidWidth
        self.atsSupported = atsSupported
        self.priSupported = priSupported
    }
}

/// A device as stored: inventory, desired assignment and status.
public struct DeviceRecord: Sendable, Equatable {
    /// The latest inventory.
    public var snapshot: DeviceSnapshot
    /// Still present in the last inventory.
    public var isPresent: Bool
    /// The VM it should be assigned to.
    public var vmID: String?
    /// Rebind to vfio-pci (and back) on assignment.
    public var isManaged: Bool
    /// The driver to give it back to, when managed.
    public var originalDriver: String?
    /// Bookkeeping.
    public var meta: ResourceMeta
    /// Lifecycle phase.
    public var phase: Phase
    /// Generation last acted on.
    public var observedGeneration: Int
    /// Status conditions.
    public var conditions: [Condition]

    /// The PCI address.
    public var address: String { snapshot.address }
}
