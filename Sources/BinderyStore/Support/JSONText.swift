/// Minimal JSON text building for canonical encodings, where key order and escaping
/// must never depend on a library's choices.
public enum JSONText {
    /// `value` as a JSON string literal (RFC 8259 escaping; non-ASCII kept as UTF-8).
    public static func string(_ value: String) -> String {
        let utf8 = value.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + value + "\""
        }
        var out: [UInt8] = [UInt8(ascii: "\"")]
        out.reserveCapacity(utf8.count + 8)
        let hex = Array("0123456789abcdef".utf8)
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case ..<0x20: out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
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
    public static func object(_ members: [(String, String)]) -> String {
        "{" + members.sorted { $0.0 < $1.0 }.map { string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    /// A string-to-string map as a JSON object with sorted keys.
    public static func object(_ map: [String: String]) -> String {
        object(map.map { ($0.key, string($0.value)) })
    }

    /// An array of JSON values.
    public static func array(_ values: [String]) -> String {
        "[" + values.joined(separator: ",") + "]"
    }
}
