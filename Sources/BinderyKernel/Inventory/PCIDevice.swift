/// A PCI device as sysfs describes it.
public struct PCIDevice: Sendable, Equatable, Codable {
    /// Domain:bus:device.function, e.g. `0000:3b:00.0`.
    public var address: String
    /// PCI vendor id.
    public var vendorID: UInt16
    /// PCI device id.
    public var deviceID: UInt16
    /// 24-bit class code.
    public var classCode: UInt32
    /// IOMMU group number (nil: no IOMMU protects it, so it cannot be assigned).
    public var iommuGroup: Int?
    /// Bound driver, if any.
    public var driver: String?
    /// NUMA node (-1 when the platform does not say).
    public var numaNode: Int
    /// PASID, ATS and PRI support.
    public var capabilities: PCIExtendedCapabilities

    /// A device from its parts.
    public init(address: String, vendorID: UInt16, deviceID: UInt16, classCode: UInt32, iommuGroup: Int?,
                driver: String?, numaNode: Int, capabilities: PCIExtendedCapabilities) {
        self.address = address
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.iommuGroup = iommuGroup
        self.driver = driver
        self.numaNode = numaNode
        self.capabilities = capabilities
    }

    /// True when bound to vfio-pci.
    public var isBoundToVFIO: Bool { driver == "vfio-pci" }

    /// True when the PCI address has the `DDDD:BB:DD.F` form.
    public static func isValidAddress(_ address: String) -> Bool {
        let bytes = Array(address.utf8)
        guard bytes.count == 12, bytes[4] == UInt8(ascii: ":"), bytes[7] == UInt8(ascii: ":"), bytes[10] == UInt8(ascii: ".") else { return false }
        let hex = Set("0123456789abcdef".utf8)
        return [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy { hex.contains(bytes[$0]) } && (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[11])
    }
}
