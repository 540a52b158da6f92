/// What the PCIe extended capabilities in a device's `config` bytes say about PASID, ATS and PRI.
public struct PCIExtendedCapabilities: Sendable, Equatable, Codable {
    /// PASID capability (id 0x1B) present.
    public var pasidSupported = false
    /// Max PASID width in bits (1…20), from the PASID capability register.
    public var pasidWidth = 0
    /// PASID execute permission supported.
    public var pasidExecute = false
    /// PASID privileged mode supported.
    public var pasidPrivileged = false
    /// Address Translation Services (id 0x0F) present.
    public var atsSupported = false
    /// Page Request Interface (id 0x13) present.
    public var priSupported = false

    /// Extended capability ids.
    public enum ID {
        /// Address Translation Services.
        public static let ats: UInt16 = 0x0F
        /// Page Request Interface.
        public static let pri: UInt16 = 0x13
        /// Process Address Space ID.
        public static let pasid: UInt16 = 0x1B
    }

    /// None of them.
    public init() {}

    /// Walks the extended capability list from offset 0x100. Short config space (non-root
    /// readers see 64 or 256 bytes) means no extended capabilities; a malformed list stops
    /// the walk rather than trusting it.
    public init(config bytes: [UInt8]) {
        func u16(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
        func u32(_ offset: Int) -> UInt32 { UInt32(u16(offset)) | UInt32(u16(offset + 2)) << 16 }
        var offset = 0x100
        var steps = 0
        while offset >= 0x100, offset + 8 <= bytes.count, steps < (4096 - 0x100) / 4 {
            steps += 1
            let header = u32(offset)
            if header == 0 || header == 0xffff_ffff { break }
            switch UInt16(header & 0xffff) {
            case ID.pasid:
                let capability = u16(offset + 4)
                pasidSupported = true
                pasidExecute = capability & (1 << 1) != 0
                pasidPrivileged = capability & (1 << 2) != 0
                pasidWidth = Int((capability >> 8) & 0x1f)
            case ID.ats: atsSupported = true
            case ID.pri: priSupported = true
            default: break
            }
            let next = Int(header >> 20) & 0xffc
            if next <= offset { break }
            offset = next
        }
    }
}
