import CBinderyKernel

/// What `VFIO_IOMMU_GET_INFO` reports: page sizes and the capability chain.
public struct IOMMUInfo: Sendable, Equatable {
    /// `VFIO_IOMMU_INFO_*` flags.
    public var flags: UInt32
    /// Bitmap of supported IOVA page sizes.
    public var iovaPageSizes: UInt64
    /// The capabilities, in chain order.
    public var capabilities: [IOMMUCapability]

    /// The usable IOVA ranges, when reported.
    public var iovaRanges: [ClosedRange<UInt64>]? {
        for case let .iovaRanges(ranges) in capabilities { return ranges }
        return nil
    }

    /// The nesting capability (simulated ABI), when the container was set up for nesting.
    public var nesting: NestingInfo? {
        for case let .nesting(info) in capabilities { return info }
        return nil
    }
}

/// One entry of the GET_INFO capability chain.
public enum IOMMUCapability: Sendable, Equatable {
    /// id 1: usable IOVA ranges (inclusive).
    case iovaRanges([ClosedRange<UInt64>])
    /// id 2: dirty-page tracking for migration.
    case migration(flags: UInt32, pageSizes: UInt64, maximumDirtyBitmapSize: UInt64)
    /// id 3: how many more DMA mappings the container accepts.
    case dmaAvailable(UInt32)
    /// The nesting ABI's capability (simulated id 0x40).
    case nesting(NestingInfo)
    /// An id Bindery does not know, kept as raw bytes (header included).
    case unknown(id: UInt16, version: UInt16, bytes: [UInt8])
}

/// `struct iommu_nesting_info`: what the host's IOMMU offers for guest page tables.
public struct NestingInfo: Sendable, Equatable {
    /// `IOMMU_PASID_FORMAT_*` of the host IOMMU (1: Intel VT-d).
    public var format: UInt32
    /// `IOMMU_NESTING_FEAT_*` bits (BIND_PGTBL 1<<1, CACHE_INVLD 1<<2).
    public var features: UInt32
    /// The widest guest address the first stage may translate.
    public var addressWidth: UInt16
    /// PASID width in bits.
    public var pasidBits: UInt16
    /// VT-d capability register.
    public var capabilityRegister: UInt64
    /// VT-d extended capability register.
    public var extendedCapabilityRegister: UInt64

    /// True when the host binds guest page tables.
    public var canBindPageTables: Bool { features & UInt32(IOMMU_NESTING_FEAT_BIND_PGTBL) != 0 }

    /// Bytes of `struct iommu_nesting_info`.
    public static let size = 56
}

extension IOMMUInfo {
    /// Capability ids of the GET_INFO chain.
    enum CapabilityID {
        static let iovaRange = UInt16(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
        static let migration = UInt16(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION)
        static let dmaAvailable = UInt16(3)
        static let nesting = UInt16(BINDERY_VFIO_IOMMU_TYPE1_INFO_CAP_NESTING)
    }

    /// Decodes a second-pass GET_INFO buffer of `count` bytes. Walks the chain from
    /// `cap_offset`, accepting any size and any id, refusing offsets outside the buffer or loops.
    static func decode(_ buffer: RawBytes, count: Int) throws(KernelError) -> IOMMUInfo {
        let flags = buffer.u32(4)
        var info = IOMMUInfo(flags: flags, iovaPageSizes: buffer.u64(8), capabilities: [])
        guard flags & UInt32(VFIO_IOMMU_INFO_CAPS) != 0, count >= 24 else { return info }
        var offset = Int(buffer.u32(16))
        var visited = Set<Int>()
        while offset != 0 {
            guard offset >= 24, offset + 8 <= count, visited.insert(offset).inserted else {
                throw .unexpected(call: "VFIO_IOMMU_GET_INFO", detail: "capability chain points to offset \(offset) of a \(count)-byte reply")
            }
            let id = buffer.u16(offset), version = buffer.u16(offset + 2)
            let next = Int(buffer.u32(offset + 4))
            let end = next > offset ? min(next, count) : count
            func need(_ bytes: Int) throws(KernelError) {
                guard offset + bytes <= end else {
                    throw .unexpected(call: "VFIO_IOMMU_GET_INFO", detail: "capability \(id) at \(offset) is shorter than \(bytes) bytes")
                }
            }
            switch id {
            case CapabilityID.iovaRange:
                try need(16)
                let ranges = Int(buffer.u32(offset + 8))
                try need(16 + 16 * ranges)
                info.capabilities.append(.iovaRanges((0..<ranges).map { index in
                    let start = buffer.u64(offset + 16 + 16 * index), last = buffer.u64(offset + 24 + 16 * index)
                    return start...max(start, last)
                }))
            case CapabilityID.migration:
                try need(32)
                info.capabilities.append(.migration(flags: buffer.u32(offset + 8), pageSizes: buffer.u64(offset + 16),
                                                    maximumDirtyBitmapSize: buffer.u64(offset + 24)))
            case CapabilityID.dmaAvailable:
                try need(12)
                info.capabilities.append(.dmaAvailable(buffer.u32(offset + 8)))
            case CapabilityID.nesting:
                try need(8 + NestingInfo.size)
                let body = offset + 8
                info.capabilities.append(.nesting(NestingInfo(
                    format: buffer.u32(body + 8), features: buffer.u32(body + 12),
                    addressWidth: buffer.u16(body + 16), pasidBits: buffer.u16(body + 18),
                    capabilityRegister: buffer.u64(body + 40), extendedCapabilityRegister: buffer.u64(body + 48))))
            default:
                info.capabilities.append(.unknown(id: id, version: version,
                                                  bytes: (offset..<end).map { buffer.u8($0) }))
            }
            offset = next
        }
        return info
    }
}
