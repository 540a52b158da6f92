/// A JSON document as parsed for checking against the contract: numbers keep their text, so
/// range checks are exact at any size, and object members keep their order.
indirect enum JSONValue: Sendable, Equatable {
    /// `{…}`, members in document order (duplicates are refused by the parser).
    case object([(key: String, value: JSONValue)])
    /// `[…]`.
    case array([JSONValue])
    /// A string, unescaped.
    case string(String)
    /// A number, exactly as written.
    case number(String)
    /// `true` or `false`.
    case bool(Bool)
    /// `null`.
    case null

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case let (.object(a), .object(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.array(a), .array(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    /// The JSON type's name as JSON Schema spells it (`integer` for whole numbers).
    var schemaType: String {
        switch self {
        case .object: return "object"
        case .array: return "array"
        case .string: return "string"
        case let .number(text): return JSONNumber.isInteger(text) ? "integer" : "number"
        case .bool: return "boolean"
        case .null: return "null"
        }
    }
}

/// Exact reasoning about JSON number text, without converting through Double.
enum JSONNumber {
    /// True when `text` (valid JSON number syntax) has no fraction or exponent.
    static func isInteger(_ text: String) -> Bool { !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) }

    /// The value as Int64 when it is an integer that fits; nil otherwise.
    static func int64(_ text: String) -> Int64? { isInteger(text) ? Int64(text) : nil }

    /// Compares two integers given as text (`-12`, `4096`) of any length.
    static func compareIntegers(_ a: String, _ b: String) -> Int {
        let (negA, digitsA) = split(a), (negB, digitsB) = split(b)
        if negA != negB { return negA ? -1 : 1 }
        let magnitude: Int
        if digitsA.count != digitsB.count {
            magnitude = digitsA.count < digitsB.count ? -1 : 1
        } else {
            magnitude = digitsA == digitsB ? 0 : (digitsA < digitsB ? -1 : 1)
        }
        return negA ? -magnitude : magnitude
    }

    private static func split(_ text: String) -> (Bool, String) {
        let negative = text.hasPrefix("-")
        var digits = Substring(negative ? text.dropFirst() : Substring(text))
        while digits.count > 1 && digits.first == "0" { digits = digits.dropFirst() }
        return (negative && digits != "0", String(digits))
    }
}
