import Foundation

/// Server-assigned resource ids: a type prefix, then 32 hex digits: the creation time in
/// milliseconds since 1970 (12 digits) and 80 random bits (20 digits), as in `vm-018f3a2b4c5d…`.
///
/// Time first, so ids sort roughly by creation: a new row lands at the right edge of the
/// tables and indexes keyed by id (`vms`, its regions, the audit history's resource index)
/// instead of on a random page of each. A batch of creates then changes a few pages rather
/// than a few per create, and the write-ahead log gets that many fewer pages to write and
/// fsync. 80 random bits keep ids unguessable and distinct within a millisecond. The time an
/// id shows is already in the resource's `createdAt`.
public enum ResourceID {
    /// A new id such as `vm-018f3a2b4c5d9e4f6a1b2d3c4e5f6071`.
    public static func make(prefix: String) -> String {
        make(prefix: prefix, milliseconds: UInt64(max(0, Date().timeIntervalSince1970 * 1000)))
    }

    /// A new id for a creation at `milliseconds` since 1970 (the low 48 bits: until the year 10889).
    static func make(prefix: String, milliseconds: UInt64) -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var out = Array(prefix.utf8) + [UInt8(ascii: "-")]
        out.reserveCapacity(out.count + 32)
        func append(_ value: UInt64, digitCount: Int) {
            for shift in stride(from: (digitCount - 1) * 4, through: 0, by: -4) {
                out.append(digits[Int((value >> UInt64(shift)) & 0xf)])
            }
        }
        append(milliseconds & 0xffff_ffff_ffff, digitCount: 12)
        append(generator.next() as UInt64, digitCount: 16)
        append((generator.next() as UInt64) & 0xffff, digitCount: 4)
        return String(decoding: out, as: UTF8.self)
    }
}
