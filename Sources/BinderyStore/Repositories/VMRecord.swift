import Foundation

/// A guest memory region DMA-mapped into a VM's IOMMU context.
public struct MemoryRegion: Sendable, Equatable, Codable {
    /// Guest physical address of the region (the IOVA).
    public var guestAddress: UInt64
    /// Length in bytes.
    public var size: UInt64
    /// A shared file backing the region, if any.
    public var backingPath: String?
    /// Offset into `backingPath`.
    public var backingOffset: UInt64

    /// A region from its parts.
    public init(guestAddress: UInt64, size: UInt64, backingPath: String? = nil, backingOffset: UInt64 = 0) {
        self.guestAddress = guestAddress
        self.size = size
        self.backingPath = backingPath
        self.backingOffset = backingOffset
    }
}

/// What a client asks for when it creates a VM.
public struct VMSpec: Sendable, Equatable, Codable {
    /// Unique, human-chosen name.
    public var name: String
    /// Free-form labels.
    public var labels: [String: String]
    /// Guest memory to map.
    public var memory: [MemoryRegion]

    /// A spec from its parts.
    public init(name: String, labels: [String: String] = [:], memory: [MemoryRegion] = []) {
        self.name = name
        self.labels = labels
        self.memory = memory
    }
}

/// Desired-state bookkeeping every resource row carries.
public struct ResourceMeta: Sendable, Equatable, Codable {
    /// Bumped on every desired-state change.
    public var generation: Int
    /// Bumped on every change; served as the ETag.
    public var resourceVersion: Int
    /// RFC 3339 creation time.
    public var createdAt: String
    /// RFC 3339 time of the last change.
    public var updatedAt: String
}

/// A VM as stored: spec, bookkeeping and status.
public struct VMRecord: Sendable, Equatable, Codable {
    /// Server-assigned id.
    public var id: String
    /// What was asked for.
    public var spec: VMSpec
    /// Generations, versions and times.
    public var meta: ResourceMeta
    /// Lifecycle phase, set by the reconciler.
    public var phase: Phase
    /// The generation the reconciler last acted on.
    public var observedGeneration: Int
    /// Status conditions, as the reconciler last wrote them.
    public var conditions: [Condition] = []

    /// The record as compact JSON with sorted keys (for audit `before`/`after`). Built by hand:
    /// it runs on the single writer for every change, where JSONEncoder cost 6% of the CPU.
    public var auditJSON: String {
        let memory = spec.memory.map { region in
            JSONText.object([
                ("guestAddress", JSONText.string("0x" + String(region.guestAddress, radix: 16))),
                ("size", String(region.size)),
                ("backingPath", JSONText.optionalString(region.backingPath)),
                ("backingOffset", String(region.backingOffset)),
            ])
        }
        return JSONText.object([
            ("id", JSONText.string(id)),
            ("name", JSONText.string(spec.name)),
            ("labels", JSONText.object(spec.labels)),
            ("memory", JSONText.array(memory)),
            ("generation", String(meta.generation)),
            ("resourceVersion", String(meta.resourceVersion)),
            ("createdAt", JSONText.string(meta.createdAt)),
            ("updatedAt", JSONText.string(meta.updatedAt)),
            ("phase", JSONText.string(phase.rawValue)),
            ("observedGeneration", String(observedGeneration)),
        ])
    }
}
