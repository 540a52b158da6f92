import CBinderyKernel

/// `struct iommu_gpasid_bind_data`: a guest page table to bind to a host PASID.
/// The header (`argsz`, `version`, `format`) says how to read the rest, as the VFIO
/// guest-PASID design settled: version 1, format Intel VT-d, 72 bytes.
public struct GuestPageTableBind: Sendable, Equatable {
    /// `IOMMU_GPASID_BIND_VERSION_*`.
    public var version: UInt32 = UInt32(IOMMU_GPASID_BIND_VERSION_1)
    /// `IOMMU_PASID_FORMAT_*`.
    public var format: UInt32 = UInt32(IOMMU_PASID_FORMAT_INTEL_VTD)
    /// Guest address width the table translates (39, 48 or 57).
    public var addressWidth: UInt32
    /// Guest page-table base (guest physical).
    public var pageTable: UInt64
    /// The host PASID the table is bound to.
    public var hostPASID: UInt64
    /// The guest's PASID, when the guest uses its own PASID space.
    public var guestPASID: UInt64?
    /// VT-d: `IOMMU_SVA_VTD_GPASID_*` flags.
    public var vtdFlags: UInt64 = 0
    /// VT-d: page attribute table.
    public var pat: UInt32 = 0
    /// VT-d: extended memory type.
    public var emt: UInt32 = 0

    /// A binding of `pageTable` (width `addressWidth`) to `hostPASID`.
    public init(addressWidth: UInt32, pageTable: UInt64, hostPASID: UInt64, guestPASID: UInt64? = nil,
                vtdFlags: UInt64 = 0, pat: UInt32 = 0, emt: UInt32 = 0) {
        self.addressWidth = addressWidth
        self.pageTable = pageTable
        self.hostPASID = hostPASID
        self.guestPASID = guestPASID
        self.vtdFlags = vtdFlags
        self.pat = pat
        self.emt = emt
    }

    /// The size of version 1 / VT-d, in bytes.
    public static let sizeV1VTD = 72

    /// Flag bits the VT-d vendor data defines (SRE … WPE).
    public static let knownVTDFlags = UInt64(IOMMU_SVA_VTD_GPASID_LAST - 1)

    /// The payload as the kernel reads it.
    public var cStruct: iommu_gpasid_bind_data {
        var data = iommu_gpasid_bind_data()
        data.argsz = UInt32(MemoryLayout<iommu_gpasid_bind_data>.size)
        data.version = version
        data.format = format
        data.addr_width = addressWidth
        data.flags = guestPASID == nil ? 0 : UInt64(IOMMU_SVA_GPASID_VAL)
        data.gpgd = pageTable
        data.hpasid = hostPASID
        data.gpasid = guestPASID ?? 0
        data.vendor.vtd.flags = vtdFlags
        data.vendor.vtd.pat = pat
        data.vendor.vtd.emt = emt
        return data
    }

    /// Decodes a payload the way the kernel must: read `argsz`, then `version` and `format`,
    /// and from those alone the size; refuse short sizes, unknown versions, formats and flags,
    /// and non-zero padding. `available` is how many bytes the enclosing call carries.
    /// Each refusal is `EINVAL`, with the reason.
    public static func decode(_ bytes: RawBytes, available: Int) -> Result<GuestPageTableBind, DecodeFailure> {
        guard available >= 12 else { return .failure(.init("payload shorter than its argsz/version/format header")) }
        let argsz = Int(bytes.u32(0)), version = bytes.u32(4), format = bytes.u32(8)
        guard version == UInt32(IOMMU_GPASID_BIND_VERSION_1) else { return .failure(.init("unknown version \(version)")) }
        guard format == UInt32(IOMMU_PASID_FORMAT_INTEL_VTD) else { return .failure(.init("unknown format \(format)")) }
        let size = sizeV1VTD
        guard argsz >= size else { return .failure(.init("argsz \(argsz) below \(size) for version 1 / VT-d")) }
        guard available >= size else { return .failure(.init("call carries \(available) bytes, payload needs \(size)")) }
        let flags = bytes.u64(16)
        guard flags & ~UInt64(IOMMU_SVA_GPASID_VAL) == 0 else { return .failure(.init("unknown flags 0x\(String(flags, radix: 16))")) }
        guard bytes.isZero(48, count: 8) else { return .failure(.init("non-zero padding")) }
        let vtdFlags = bytes.u64(56)
        guard vtdFlags & ~knownVTDFlags == 0 else { return .failure(.init("unknown VT-d flags 0x\(String(vtdFlags, radix: 16))")) }
        var bind = GuestPageTableBind(addressWidth: bytes.u32(12), pageTable: bytes.u64(24), hostPASID: bytes.u64(32),
                                      vtdFlags: vtdFlags, pat: bytes.u32(64), emt: bytes.u32(68))
        bind.version = version
        bind.format = format
        if flags & UInt64(IOMMU_SVA_GPASID_VAL) != 0 { bind.guestPASID = bytes.u64(40) }
        return .success(bind)
    }

    /// Why a payload was refused (the kernel answers `EINVAL`).
    public struct DecodeFailure: Error, Equatable, Sendable {
        /// What was wrong.
        public let reason: String
        init(_ reason: String) { self.reason = reason }
    }
}

extension GuestPageTableBind {
    /// The VT-d flag bits for the API's field names (`sre`, `eafe`, `pcd`, `pwt`, `emte`, `cd`);
    /// other names are ignored.
    public static func vtdFlags(named names: Set<String>) -> UInt64 {
        let bits: [String: UInt64] = [
            "sre": UInt64(IOMMU_SVA_VTD_GPASID_SRE), "eafe": UInt64(IOMMU_SVA_VTD_GPASID_EAFE), "pcd": UInt64(IOMMU_SVA_VTD_GPASID_PCD),
            "pwt": UInt64(IOMMU_SVA_VTD_GPASID_PWT), "emte": UInt64(IOMMU_SVA_VTD_GPASID_EMTE), "cd": UInt64(IOMMU_SVA_VTD_GPASID_CD),
        ]
        return names.reduce(0) { $0 | (bits[$1] ?? 0) }
    }
}
