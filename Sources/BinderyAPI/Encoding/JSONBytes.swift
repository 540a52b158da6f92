import BinderyStore

/// JSON scalars appended to a byte array, written as JSONEncoder writes them (strings escaped
/// by `JSONText.writeQuoted` with JSONEncoder's `\b` and `\f`): what every hand-written
/// response writer here uses, so their bytes and the generated code's agree.
enum JSONBytes {
    /// `value` as a quoted JSON string.
    static func string(_ value: String, _ out: inout [UInt8]) {
        var value = value
        value.withUTF8 { bytes in
            // Most strings (ids, names, times) need no escape: copied as they are.
            if !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: bytes)
                out.append(UInt8(ascii: "\""))
                return
            }
            let start = out.count
            let room = JSONText.maximumQuotedLength(bytes.count)
            out.append(contentsOf: repeatElement(0, count: room))
            let written = out.withUnsafeMutableBufferPointer { JSONText.writeQuoted(bytes, to: $0.baseAddress! + start, shorthands: true) }
            out.removeLast(room - written)
        }
    }

    /// The stored time `text` as the generated types write it (`Timestamp.format` of its
    /// instant): copied when it is already in that form, as stored times are. False, writing
    /// nothing, when it is not a time.
    static func timestamp(_ text: String, _ out: inout [UInt8]) -> Bool {
        if Timestamp.isCanonical(text) {
            string(text, &out)
            return true
        }
        guard let date = Timestamp.parse(text) else { return false }
        string(Timestamp.format(date), &out)
        return true
    }

    /// `value` in decimal.
    static func number<N: BinaryInteger>(_ value: N, _ out: inout [UInt8]) {
        guard let value = Int64(exactly: value) else { return out.append(contentsOf: String(value).utf8) }
        if value < 0 {
            guard value != .min else { return out.append(contentsOf: String(value).utf8) }
            out.append(UInt8(ascii: "-"))
        }
        digits(value.magnitude, radix: 10, &out)
    }

    /// `value` as `"0x…"` in lowercase hex, as `Representation.hex` writes it.
    static func hex(_ value: UInt64, _ out: inout [UInt8]) {
        out.append(contentsOf: #""0x"#.utf8)
        digits(value, radix: 16, &out)
        out.append(UInt8(ascii: "\""))
    }

    /// The digits of `value` in `radix` (10 or 16, lowercase), most significant first.
    static func digits(_ value: UInt64, radix: UInt64, _ out: inout [UInt8]) {
        var reversed: (UInt64, UInt64, UInt64) = (0, 0, 0)   // up to 20 decimal digits, one byte each
        var count = 0, rest = value
        withUnsafeMutableBytes(of: &reversed) { buffer in
            repeat {
                let digit = UInt8(rest % radix)
                buffer[count] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                count += 1
                rest /= radix
            } while rest > 0
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[index]) }
        }
    }
}
