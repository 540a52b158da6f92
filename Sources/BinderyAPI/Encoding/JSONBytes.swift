import BinderyStore

/// JSON scalars appended to a byte array, written as JSONEncoder writes them (strings escaped
/// by `JSONText.writeQuoted` with JSONEncoder's `\b` and `\f`): what every hand-written
/// response writer here uses, so their bytes and the generated code's agree.
enum JSONBytes {
    /// `value` as a quoted JSON string.
    static func string(_ value: String, _ out: inout [UInt8]) {
        var value = value
        value.withUTF8 { bytes in
            let start = out.count
            let room = JSONText.maximumQuotedLength(bytes.count)
            out.append(contentsOf: repeatElement(0, count: room))
            let written = out.withUnsafeMutableBufferPointer { JSONText.writeQuoted(bytes, to: $0.baseAddress! + start, shorthands: true) }
            out.removeLast(room - written)
        }
    }

    /// `value` in decimal.
    static func number<N: BinaryInteger>(_ value: N, _ out: inout [UInt8]) { out.append(contentsOf: String(value).utf8) }
}
