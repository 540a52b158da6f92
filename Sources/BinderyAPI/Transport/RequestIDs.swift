import Synchronization

/// Ids for requests that came without `X-Request-Id`: `req-` and 16 hex digits, unique within
/// the process and unlikely to repeat across restarts. Each is a counter mixed by a bijection
/// from a random start drawn once, not random bits drawn per request (a `getrandom` syscall
/// and a `String(radix:)` per request were 2% of a `GET /v1/vms/{id}`'s CPU).
enum ResourceIDMaker {
    /// Where the counter started, drawn from the system's generator at first use.
    private static let start: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()
    /// Requests numbered so far.
    private static let counter = Atomic<UInt64>(0)

    /// A new request id.
    static func requestID() -> String {
        let value = mix(start &+ counter.add(1, ordering: .relaxed).newValue)
        return String(unsafeUninitializedCapacity: 20) { buffer in
            for (index, byte) in "req-".utf8.enumerated() { buffer[index] = byte }
            for position in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * position)) & 0xf
                buffer[4 + position] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 20
        }
    }

    /// SplitMix64's finalizer: a bijection on 64 bits (distinct counters give distinct ids)
    /// whose outputs look unrelated to each other.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
