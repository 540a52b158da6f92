/// What this host's kernel and IOMMU offer, as the VFIO interface reports it.
public struct HostCapabilities: Sendable, Equatable, Codable {
    /// `linux` or `simulated`.
    public var kernelDriver: String
    /// The kernel release.
    public var kernelRelease: String
    /// `VFIO_GET_API_VERSION`, nil when `/dev/vfio/vfio` is absent.
    public var vfioAPIVersion: Int?
    /// `VFIO_CHECK_EXTENSION(VFIO_TYPE1v2_IOMMU)`.
    public var type1v2: Bool
    /// `/dev/iommu` opens.
    public var iommufd: Bool
    /// Guest page-table binding (nested translation).
    public var nesting: Nesting

    /// Nested translation support.
    public struct Nesting: Sendable, Equatable, Codable {
        /// Guest page tables can be bound.
        public var supported: Bool
        /// How: `vfio-type1-nesting` or `iommufd`; nil when unsupported.
        public var mechanism: Mechanism?
        /// Bind formats and their versions.
        public var formats: [Format]
        /// Host PASID width in bits (0 when unknown).
        public var pasidBits: Int
        /// Guest address widths a first-stage table may use.
        public var addressWidths: [Int]
        /// Why it is unsupported (or what could not be probed).
        public var reason: String?
        /// Where a table can be attached, as the kernel answered (nil: not learned).
        public var pasidScope: PASIDScope?
        /// The probe had no device on vfio-pci to ask the kernel with: the answer is provisional
        /// and is asked again once one is there.
        public var awaitingDevice = false

        /// Unsupported, for `reason`.
        public static func unsupported(_ reason: String) -> Nesting {
            Nesting(supported: false, mechanism: nil, formats: [], pasidBits: 0, addressWidths: [], reason: reason)
        }
    }

    /// Where a guest page table can be attached.
    public enum PASIDScope: String, Sendable, Codable {
        /// At each PASID of a device (type1 nesting; iommufd 6.15+).
        case perPASID = "per-pasid"
        /// Only device-wide, for requests without PASID (iommufd 6.7–6.14).
        case device
    }

    /// A mechanism for binding guest page tables.
    public enum Mechanism: String, Sendable, Codable {
        /// `VFIO_IOMMU_NESTING_OP` on a type1 container (the guest-PASID design's ABI).
        case vfioType1Nesting = "vfio-type1-nesting"
        /// iommufd nested HWPTs attached per PASID.
        case iommufd
    }

    /// A bind format and the versions of it the host reads.
    public struct Format: Sendable, Equatable, Codable {
        /// `intel-vtd`.
        public var name: String
        /// Supported payload versions.
        public var versions: [Int]
    }

    /// True when `format` at `version` can be bound here.
    public func supports(format: String, version: Int) -> Bool {
        nesting.formats.contains { $0.name == format && $0.versions.contains(version) }
    }
}
