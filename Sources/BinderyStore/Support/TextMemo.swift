import Synchronization

/// Values parsed from stored text, remembered by the text: reads parse the same few JSON texts
/// (conditions, labels, format fields) again and again. Bounded: once `capacity` texts, or
/// texts of `maximumBytes` in all, are held, the memo starts over rather than growing with
/// whatever clients store.
public final class TextMemo<Value: Sendable>: Sendable {
    private struct Held {
        var values: [String: Value] = [:]
        var bytes = 0
    }

    private let capacity: Int
    private let maximumBytes: Int
    private let held = Mutex(Held())

    /// A memo of at most `capacity` texts and `maximumBytes` of them (values are taken to be
    /// about their text's size).
    public init(capacity: Int, maximumBytes: Int = 8 << 20) {
        self.capacity = capacity
        self.maximumBytes = maximumBytes
    }

    /// The value for `text`, parsed by `parse` the first time it is seen.
    public func value(for text: String, parse: (String) throws -> Value) rethrows -> Value {
        // A hit must be the same bytes: `String` equality is canonical equivalence (é and e + ◌́).
        let known = held.withLock { held in held.values.index(forKey: text).map { held.values[$0] } }
        if let known, known.key.utf8.elementsEqual(text.utf8) { return known.value }
        let value = try parse(text)
        held.withLock { held in
            if held.values.count >= capacity || held.bytes + text.utf8.count > maximumBytes { held = Held() }
            held.values.removeValue(forKey: text)  // a key equal in Unicode but not in bytes is replaced, not kept
            held.values[text] = value
            held.bytes += text.utf8.count
        }
        return value
    }
}
