/// Little-endian reads and writes at byte offsets of a kernel argument buffer, the way the
/// kernel's copy_from_user/copy_to_user see it (no alignment assumed).
public struct RawBytes {
    /// The start of the buffer.
    public let base: UnsafeMutableRawPointer

    /// A view of the bytes at `base`.
    public init(_ base: UnsafeMutableRawPointer) { self.base = base }

    /// The u8 at `offset`.
    public func u8(_ offset: Int) -> UInt8 { base.loadUnaligned(fromByteOffset: offset, as: UInt8.self) }
    /// The u16 at `offset`.
    public func u16(_ offset: Int) -> UInt16 { UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    /// The u32 at `offset`.
    public func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    /// The s32 at `offset`.
    public func s32(_ offset: Int) -> Int32 { Int32(bitPattern: u32(offset)) }
    /// The u64 at `offset`.
    public func u64(_ offset: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }

    /// Writes a u8 at `offset`.
    public func set(_ offset: Int, u8 value: UInt8) { base.storeBytes(of: value, toByteOffset: offset, as: UInt8.self) }
    /// Writes a u16 at `offset`.
    public func set(_ offset: Int, u16 value: UInt16) { base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self) }
    /// Writes a u32 at `offset`.
    public func set(_ offset: Int, u32 value: UInt32) { base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
    /// Writes a u64 at `offset`.
    public func set(_ offset: Int, u64 value: UInt64) { base.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self) }

    /// True when the `count` bytes from `offset` are all zero.
    public func isZero(_ offset: Int, count: Int) -> Bool {
        (0..<count).allSatisfy { u8(offset + $0) == 0 }
    }
}

/// A zeroed, 8-byte aligned buffer for variable-size kernel structs (GET_INFO's second pass).
public final class KernelBuffer {
    /// The bytes.
    public let bytes: UnsafeMutableRawBufferPointer

    /// A zeroed buffer of `count` bytes.
    public init(count: Int) {
        bytes = .allocate(byteCount: max(count, 8), alignment: 8)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { bytes.deallocate() }

    /// A little-endian view of the buffer.
    public var raw: RawBytes { RawBytes(bytes.baseAddress!) }
}
