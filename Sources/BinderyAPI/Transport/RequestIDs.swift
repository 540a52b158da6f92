import Synchronization

/// Ids for requests that came without `X-Request-Id`: `req-` and 16 hex digits. Each is a
/// request counter hashed with the process's random SipHash key (`Hasher`), so ids neither
/// reveal how many requests came before nor let one predict the next, and repeat no more
/// often than random 64-bit ids; drawing random bits per request instead was a `getrandom`
/// syscall, and with `String(radix:)` 2% of a `GET /v1/vms/{id}`'s CPU.
enum ResourceIDMaker {
    /// Requests numbered so far.
    private static let counter = Atomic<UInt64>(0)

    /// A new request id.
    static func requestID() -> String {
        var hasher = Hasher()
        hasher.combine(counter.add(1, ordering: .relaxed).newValue)
        let value = UInt64(bitPattern: Int64(hasher.finalize()))
        return String(unsafeUninitializedCapacity: 20) { buffer in
            for (index, byte) in "req-".utf8.enumerated() { buffer[index] = byte }
            for position in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * position)) & 0xf
                buffer[4 + position] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 20
        }
    }
}
