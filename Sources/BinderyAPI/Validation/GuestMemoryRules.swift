import BinderyStore

/// Guest-physical ranges, checked without overflow: every comparison is against
/// `limit - size`, never `address + size`, so no client integer can trap the daemon.
enum GuestMemoryRules {
    /// Guest physical addresses lie below 2^57 (5-level paging's reach).
    static let addressLimit: UInt64 = 1 << 57
    /// Bytes in a page.
    static let page: UInt64 = 4096

    /// True when `[address, address + size)` lies below `addressLimit`.
    static func fitsBelowLimit(address: UInt64, size: UInt64) -> Bool {
        size <= addressLimit && address <= addressLimit - size
    }

    /// True when two ranges that both fit below the limit overlap.
    static func overlap(_ a: MemoryRegion, _ b: MemoryRegion) -> Bool {
        guard fitsBelowLimit(address: a.guestAddress, size: a.size), fitsBelowLimit(address: b.guestAddress, size: b.size) else {
            return false
        }
        return a.guestAddress < b.guestAddress + b.size && b.guestAddress < a.guestAddress + a.size
    }

    /// True when the page at `address` lies wholly inside `region`.
    static func contains(_ region: MemoryRegion, page address: UInt64) -> Bool {
        address >= region.guestAddress && region.size >= page && address - region.guestAddress <= region.size - page
    }

    /// True when the page at `address` lies wholly inside one of `regions`.
    static func contains(_ regions: [MemoryRegion], page address: UInt64) -> Bool {
        regions.contains { contains($0, page: address) }
    }

    /// A region as a client wrote it, before it is checked.
    struct Input: Sendable {
        /// `0x…` hex text.
        var guestAddress: String
        /// Bytes, as sent.
        var size: Int64
        /// Backing file path, if any.
        var backingPath: String?
        /// Offset into the backing file, as sent.
        var backingOffset: Int64?
    }

    /// Checks `inputs` (at `/memory/N`) and returns the regions that passed every rule. Rules:
    /// a hex address, 4 KiB aligned; a size that is a positive multiple of 4096; the range below
    /// 2^57; an offset that is a non-negative multiple of 4096 with `offset + size` within 2^63;
    /// no two regions overlapping.
    static func check(_ inputs: [Input], into validation: inout Validation) -> [MemoryRegion] {
        var regions: [MemoryRegion] = []
        for (index, input) in inputs.enumerated() {
            let pointer = "/memory/\(index)"
            var valid = true
            func rule(_ condition: Bool, _ field: String, _ detail: String) {
                if !condition { validation.fail(pointer + field, detail); valid = false }
            }
            let address = Validation.hex(input.guestAddress)
            rule(address != nil, "/guestAddress", "must be a hex address like 0x100000000")
            rule(input.size >= Int64(page) && input.size % Int64(page) == 0, "/size", "must be a positive multiple of 4096")
            // An offset means something only with a backing file; without one it is ignored.
            let offset = input.backingPath == nil ? 0 : input.backingOffset ?? 0
            if input.backingPath != nil {
                rule(offset >= 0 && offset % Int64(page) == 0, "/backing/offset", "must be a non-negative multiple of 4096")
                rule(offset < 0 || input.size < 0 || offset <= Int64.max - input.size, "/backing/offset", "offset plus size must fit in 63 bits")
            }
            guard valid, let address else { continue }
            rule(address % page == 0, "/guestAddress", "must be 4 KiB aligned")
            rule(fitsBelowLimit(address: address, size: UInt64(input.size)), "", "must lie below 2^57")
            guard valid else { continue }
            let region = MemoryRegion(guestAddress: address, size: UInt64(input.size), backingPath: input.backingPath,
                                      backingOffset: UInt64(offset))
            if regions.contains(where: { overlap($0, region) }) {
                validation.fail(pointer, "overlaps another region")
                continue
            }
            regions.append(region)
        }
        return regions
    }
}
