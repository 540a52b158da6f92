/// The kinds of host the simulated kernel can pretend to be, by how (and whether) they bind
/// guest page tables. Same devices, different IOMMU interfaces.
public enum SimulatedHostProfile: String, Sendable, CaseIterable {
    /// The guest-PASID design's type1 nesting ABI (no iommufd): today's default.
    case type1Nesting = "type1-nesting"
    /// iommufd with VT-d nesting and per-PASID attach (upstream 6.15+), no type1 nesting.
    case iommufd
    /// iommufd with nesting but only device-wide attach (6.7–6.14).
    case iommufdDeviceOnly = "iommufd-device-only"
    /// type1 without nesting and no iommufd: nothing can bind guest page tables.
    case type1Only = "type1-only"

    /// The standard devices on a host of this kind.
    public var host: SimulatedHost {
        var host = SimulatedHost.standard
        switch self {
        case .type1Nesting:
            host.type1Nesting = true
            host.iommufd = false
        case .iommufd:
            host.type1Nesting = false
            host.iommufd = true
            host.hardwareNesting = true
            host.pasidAttach = true
        case .iommufdDeviceOnly:
            host.type1Nesting = false
            host.iommufd = true
            host.hardwareNesting = true
            host.pasidAttach = false
        case .type1Only:
            host.type1Nesting = false
            host.iommufd = false
            host.hardwareNesting = false
        }
        return host
    }
}
