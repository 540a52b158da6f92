import Synchronization

/// Values parsed from stored text, remembered by the text: reads parse the same few JSON texts
/// (conditions, labels, format fields) again and again. Bounded: once `capacity` texts are
/// held, the memo starts over rather than growing with whatever clients store.
public final class TextMemo<Value: Sendable>: Sendable {
    private let capacity: Int
    private let values = Mutex<[String: Value]>([:])

    /// A memo of at most `capacity` texts.
    public init(capacity: Int) { self.capacity = capacity }

    /// The value for `text`, parsed by `parse` the first time it is seen.
    public func value(for text: String, parse: (String) throws -> Value) rethrows -> Value {
        if let known = values.withLock({ $0[text] }) { return known }
        let value = try parse(text)
        values.withLock { values in
            if values.count >= capacity { values.removeAll(keepingCapacity: true) }
            values[text] = value
        }
        return value
    }
}
