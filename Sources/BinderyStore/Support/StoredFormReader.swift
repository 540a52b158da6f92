/// Reads JSON in the layout the store writes it (`JSONText`), byte by byte: literal
/// punctuation and keys, and strings with no escapes. Anything else is left to `JSONDecoder`.
struct StoredFormReader {
    /// The text's UTF-8.
    let bytes: UnsafeBufferPointer<UInt8>
    /// Where the next read starts.
    var offset = 0

    /// Whether every byte was read.
    var isAtEnd: Bool { offset == bytes.count }

    /// Whether `literal` comes next (then it is passed).
    mutating func take(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard offset + count <= bytes.count,
              UnsafeBufferPointer(start: literal.utf8Start, count: count).elementsEqual(bytes[offset..<offset + count]) else { return false }
        offset += count
        return true
    }

    /// A quoted string with no escape and no control character in it, or nil.
    mutating func string() -> String? {
        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { return nil }
        var end = offset + 1
        while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
            guard bytes[end] >= 0x20, bytes[end] != UInt8(ascii: "\\") else { return nil }
            end += 1
        }
        guard end < bytes.count else { return nil }
        let value = String(decoding: UnsafeBufferPointer(rebasing: bytes[offset + 1..<end]), as: UTF8.self)
        offset = end + 1
        return value
    }
}

extension StoredFormReader {
    /// A JSON object of strings as `JSONText.object` writes it (labels), when no key or value
    /// needs an escape and no key repeats; nil for anything else.
    static func stringMap(_ text: String) -> [String: String]? {
        var text = text
        return text.withUTF8 { bytes -> [String: String]? in
            var reader = StoredFormReader(bytes: bytes)
            guard reader.take("{") else { return nil }
            var map: [String: String] = [:]
            if reader.take("}") { return reader.isAtEnd ? map : nil }
            repeat {
                guard let key = reader.string(), reader.take(":"), let value = reader.string(), map.updateValue(value, forKey: key) == nil else {
                    return nil
                }
            } while reader.take(",")
            return reader.take("}") && reader.isAtEnd ? map : nil
        }
    }
}
