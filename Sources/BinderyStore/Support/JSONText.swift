/// Minimal JSON text building for canonical encodings, where key order and escaping
/// must never depend on a library's choices.
public enum JSONText {
    /// `value` as a JSON string literal (RFC 8259 escaping; non-ASCII kept as UTF-8).
    public static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `value` as a JSON string, or `null`.
    public static func optionalString(_ value: String?) -> String {
        value.map(string) ?? "null"
    }

    /// `value` as a JSON number, or `null`.
    public static func optionalInteger(_ value: Int?) -> String {
        value.map { String($0) } ?? "null"
    }
}
