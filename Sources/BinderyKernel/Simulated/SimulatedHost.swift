/// The synthetic machine the simulated kernel pretends to be: its PCI devices and IOMMU.
public struct SimulatedHost: Sendable, Equatable, Codable {
    /// One synthetic PCI device.
    public struct Device: Sendable, Equatable, Codable {
        /// PCI address.
        public var address: String
        /// Vendor id.
        public var vendorID: UInt16
        /// Device id.
        public var deviceID: UInt16
        /// Class code.
        public var classCode: UInt32
        /// IOMMU group.
        public var group: Int
        /// Driver bound at boot (nil: none).
        public var driver: String?
        /// The driver that claims it when probed without an override (nil: none).
        public var nativeDriver: String?
        /// NUMA node.
        public var numaNode: Int
        /// PASID width in bits; 0: no PASID capability.
        public var pasidWidth: Int
        /// ATS capability.
        public var ats: Bool
        /// PRI capability.
        public var pri: Bool
        /// Network interfaces its native driver brings up (`net/<if>/operstate` reads `up`).
        public var upInterfaces: [String]
        /// NVMe controller and namespaces its native driver exposes (`nvme/nvme0/nvme0n1`).
        public var nvmeNamespaces: [String]

        /// A device from its parts.
        public init(address: String, vendorID: UInt16 = 0x8086, deviceID: UInt16 = 0x0b25, classCode: UInt32 = 0x088000,
                    group: Int, driver: String?, nativeDriver: String? = nil, numaNode: Int = 0,
                    pasidWidth: Int = 20, ats: Bool = true, pri: Bool = true, upInterfaces: [String] = [], nvmeNamespaces: [String] = []) {
            self.upInterfaces = upInterfaces
            self.nvmeNamespaces = nvmeNamespaces
            self.address = address
            self.vendorID = vendorID
            self.deviceID = deviceID
            self.classCode = classCode
            self.group = group
            self.driver = driver
            self.nativeDriver = nativeDriver ?? (driver == "vfio-pci" ? nil : driver)
            self.numaNode = numaNode
            self.pasidWidth = pasidWidth
            self.ats = ats
            self.pri = pri
        }
    }

    /// The release `GET /v1/host` reports.
    public var kernelRelease = "6.12.0-simulated"
    /// PCI devices.
    public var devices: [Device]
    /// The type1 nesting ABI (guest page-table binding through the container) is advertised.
    public var type1Nesting = true
    /// `/dev/iommu` exists.
    public var iommufd = true
    /// The IOMMU reports nesting (iommufd `GET_HW_INFO` ecap bits).
    public var hardwareNesting = true
    /// iommufd attaches per PASID (`VFIO_DEVICE_ATTACH_PASID`, 6.15+); false: device-wide only.
    public var pasidAttach = true
    /// Host PASID width in bits.
    public var pasidBits = 20
    /// Widest first-stage guest address width.
    public var addressWidth = 57
    /// How many DMA mappings one container accepts.
    public var dmaMappingLimit = 65535

    /// A host from its devices.
    public init(devices: [Device]) { self.devices = devices }

    /// The default host: four PASID-capable devices (20-bit PASIDs) in their own groups,
    /// one group with two devices, and one device without PASID. Two start on vfio-pci. And the
    /// host's own devices, which the default device policy refuses: the NVMe boot controller
    /// (storage class, namespace nvme0n1) and the management NIC (interface eno1 up).
    public static let standard = SimulatedHost(devices: [
        Device(address: "0000:01:00.0", vendorID: 0x144d, deviceID: 0xa80a, classCode: 0x010802, group: 1, driver: "nvme",
               numaNode: 0, pasidWidth: 0, ats: false, pri: false, nvmeNamespaces: ["nvme0n1"]),
        Device(address: "0000:02:00.0", vendorID: 0x8086, deviceID: 0x1533, classCode: 0x020000, group: 2, driver: "igb",
               numaNode: 0, pasidWidth: 0, ats: false, pri: false, upInterfaces: ["eno1"]),
        Device(address: "0000:3b:00.0", group: 10, driver: "vfio-pci", nativeDriver: "idxd", numaNode: 0),
        Device(address: "0000:3c:00.0", group: 11, driver: "vfio-pci", nativeDriver: "idxd", numaNode: 0),
        Device(address: "0000:3d:00.0", group: 12, driver: "idxd", numaNode: 1),
        Device(address: "0000:3e:00.0", group: 13, driver: "idxd", numaNode: 1),
        Device(address: "0000:5e:00.0", vendorID: 0x15b3, deviceID: 0x101d, classCode: 0x020000, group: 14,
               driver: "mlx5_core", numaNode: 0, pasidWidth: 16),
        Device(address: "0000:5e:00.1", vendorID: 0x15b3, deviceID: 0x101d, classCode: 0x020000, group: 14,
               driver: "mlx5_core", numaNode: 0, pasidWidth: 16),
        Device(address: "0000:af:00.0", vendorID: 0x8086, deviceID: 0x10fb, classCode: 0x020000, group: 15,
               driver: "ixgbe", numaNode: 1, pasidWidth: 0, ats: false, pri: false),
    ])

    /// The PCI config space bytes (4 KiB) with PASID, ATS and PRI extended capabilities.
    public static func configSpace(for device: Device) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 4096)
        func put16(_ offset: Int, _ value: UInt16) { bytes[offset] = UInt8(value & 0xff); bytes[offset + 1] = UInt8(value >> 8) }
        func put32(_ offset: Int, _ value: UInt32) { put16(offset, UInt16(value & 0xffff)); put16(offset + 2, UInt16(value >> 16)) }
        put16(0, device.vendorID)
        put16(2, device.deviceID)
        bytes[0x09] = UInt8(device.classCode & 0xff)
        bytes[0x0a] = UInt8((device.classCode >> 8) & 0xff)
        bytes[0x0b] = UInt8((device.classCode >> 16) & 0xff)
        var capabilities: [(UInt16, [UInt8])] = []
        if device.ats { capabilities.append((PCIExtendedCapabilities.ID.ats, [0x20, 0, 0, 0])) }
        if device.pasidWidth > 0 {
            let register = UInt16(device.pasidWidth) << 8 | 0b110
            capabilities.append((PCIExtendedCapabilities.ID.pasid, [UInt8(register & 0xff), UInt8(register >> 8), 0, 0]))
        }
        if device.pri { capabilities.append((PCIExtendedCapabilities.ID.pri, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])) }
        var offset = 0x100
        for (index, (id, body)) in capabilities.enumerated() {
            let next = index + 1 < capabilities.count ? offset + 4 + body.count : 0
            let aligned = (next + 3) & ~3
            put32(offset, UInt32(id) | 1 << 16 | UInt32(aligned) << 20)
            for (i, byte) in body.enumerated() { bytes[offset + 4 + i] = byte }
            offset = aligned
        }
        return bytes
    }
}
