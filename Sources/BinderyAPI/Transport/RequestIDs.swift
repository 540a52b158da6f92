import Synchronization

/// Ids for requests that came without `X-Request-Id`: `req-` and up to 16 hex digits. Each is a
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
        var id = Array("req-".utf8)
        JSONBytes.digits(UInt64(bitPattern: Int64(hasher.finalize())), radix: 16, &id)
        return String(decoding: id, as: UTF8.self)
    }
}
