/// Minimal JSON text building for canonical encodings, where key order and escaping
/// must never depend on a library's choices.
public enum JSONText {
    /// `value` as a JSON string literal (RFC 8259 escaping; non-ASCII kept as UTF-8).
    public static func string(_ value: String) -> String {
        if !needsEscape(value) { return "\"" + value + "\"" }
        var contiguous = value
        contiguous.makeContiguousUTF8()
        let escaped = contiguous.utf8.withContiguousStorageIfAvailable { bytes in
            [UInt8](unsafeUninitializedCapacity: maximumQuotedLength(bytes.count)) { buffer, count in
                count = writeQuoted(bytes, to: buffer.baseAddress!)
            }
        }!
        return String(decoding: escaped, as: UTF8.self)
    }

    /// The most bytes `writeQuoted` writes for `count` input bytes (each may become `\u00XX`).
    public static func maximumQuotedLength(_ count: Int) -> Int { 6 * count + 2 }

    /// Writes `bytes` (UTF-8) as a quoted JSON string at `out`, which has room for
    /// `maximumQuotedLength(bytes.count)`; returns how many bytes it wrote. The one place the
    /// escaping rules live: the audit chain's hashes depend on them as they are (`\u0008`);
    /// `shorthands` writes backspace and form feed as `\b` and `\f`, as JSONEncoder does, for
    /// what the API sends.
    public static func writeQuoted(_ bytes: UnsafeBufferPointer<UInt8>, to out: UnsafeMutablePointer<UInt8>,
                                   shorthands: Bool = false) -> Int {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var cursor = out
        cursor.pointee = quote
        cursor += 1
        var start = 0
        for index in bytes.indices {
            let byte = bytes[index]
            guard byte < 0x20 || byte == quote || byte == backslash else { continue }
            if start < index {
                cursor.update(from: bytes.baseAddress! + start, count: index - start)
                cursor += index - start
            }
            start = index + 1
            cursor.pointee = backslash
            switch byte {
            case quote, backslash: cursor[1] = byte; cursor += 2
            case UInt8(ascii: "\n"): cursor[1] = UInt8(ascii: "n"); cursor += 2
            case UInt8(ascii: "\r"): cursor[1] = UInt8(ascii: "r"); cursor += 2
            case UInt8(ascii: "\t"): cursor[1] = UInt8(ascii: "t"); cursor += 2
            case 0x08 where shorthands: cursor[1] = UInt8(ascii: "b"); cursor += 2
            case 0x0c where shorthands: cursor[1] = UInt8(ascii: "f"); cursor += 2
            default:
                cursor[1] = UInt8(ascii: "u"); cursor[2] = UInt8(ascii: "0"); cursor[3] = UInt8(ascii: "0")
                cursor[4] = hexDigit(byte >> 4); cursor[5] = hexDigit(byte & 0xf)
                cursor += 6
            }
        }
        if start < bytes.count {
            cursor.update(from: bytes.baseAddress! + start, count: bytes.count - start)
            cursor += bytes.count - start
        }
        cursor.pointee = quote
        return cursor + 1 - out
    }

    /// A lowercase hex digit.
    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// `value` as a JSON string, or `null`.
    public static func optionalString(_ value: String?) -> String {
        value.map(string) ?? "null"
    }

    /// `value` as a JSON number, or `null`.
    public static func optionalInteger(_ value: Int?) -> String {
        value.map { String($0) } ?? "null"
    }

    /// An object from `(key, JSON value)` pairs, keys sorted, no insignificant white space.
    /// Written into one string sized up front: every audit event's before and after are built
    /// here, on the writer every write shares.
    public static func object(_ members: [(String, String)]) -> String {
        let sorted = members.sorted { $0.0 < $1.0 }
        var text = "{"
        text.reserveCapacity(sorted.reduce(2) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        for (index, (key, value)) in sorted.enumerated() {
            if index > 0 { text += "," }
            appendString(key, to: &text)
            text += ":"
            text += value
        }
        text += "}"
        return text
    }

    /// A string-to-string map as a JSON object with sorted keys.
    public static func object(_ map: [String: String]) -> String {
        var text = "{"
        for (index, key) in map.keys.sorted().enumerated() {
            if index > 0 { text += "," }
            appendString(key, to: &text)
            text += ":"
            appendString(map[key]!, to: &text)
        }
        text += "}"
        return text
    }

    /// An array of JSON values.
    public static func array(_ values: [String]) -> String {
        "[" + values.joined(separator: ",") + "]"
    }

    /// Appends `value` as `string(value)` writes it, without making that string when nothing needs escaping.
    private static func appendString(_ value: String, to text: inout String) {
        guard !needsEscape(value) else {
            text += string(value)
            return
        }
        text += "\""
        text += value
        text += "\""
    }

    /// Whether `value` has a byte JSON must escape (a control character, `"` or `\\`).
    private static func needsEscape(_ value: String) -> Bool {
        value.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
    }
}
