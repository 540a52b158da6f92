/// A region of guest memory to DMA-map: guest physical address (IOVA), size, and an
/// optional shared file that backs it (anonymous memory otherwise).
public struct GuestMemoryRegion: Sendable, Equatable {
    /// Guest physical address; the IOVA of the mapping.
    public var guestAddress: UInt64
    /// Length in bytes (a multiple of 4 KiB).
    public var size: UInt64
    /// File backing the memory (e.g. in /dev/shm), shared with the VMM.
    public var backingPath: String?
    /// Offset into `backingPath`.
    public var backingOffset: UInt64
    /// The allowed memory directory `backingPath` lies beneath (see `GuestMemoryPolicy`); the
    /// file is opened beneath it, never by following the path as given.
    public var backingDirectory: String?

    /// A region from its parts.
    public init(guestAddress: UInt64, size: UInt64, backingPath: String? = nil, backingOffset: UInt64 = 0, backingDirectory: String? = nil) {
        self.guestAddress = guestAddress
        self.size = size
        self.backingPath = backingPath
        self.backingOffset = backingOffset
        self.backingDirectory = backingDirectory
    }
}
