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

    /// The JSON Schema type of this value (`integer` for whole numbers).
    var schemaType: SchemaType {
        switch self {
        case .object: return .object
        case .array: return .array
        case .string: return .string
        case let .number(text): return JSONNumber.isInteger(text) ? .integer : .number
        case .bool: return .boolean
        case .null: return .null
        }
    }

    /// A JSON Schema type name (`integer`: a number without fraction or exponent).
    enum SchemaType: UInt8 {
        case object, array, string, integer, number, boolean, null

        /// The type `name` spells in a schema, if it is one.
        init?(name: String) {
            switch name {
            case "object": self = .object
            case "array": self = .array
            case "string": self = .string
            case "integer": self = .integer
            case "number": self = .number
            case "boolean": self = .boolean
            case "null": self = .null
            default: return nil
            }
        }

        /// This type's bit in a set of types.
        var bit: UInt8 { 1 << rawValue }
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

extension JSONValue {
    /// The document with every integral number written as an integer (`8192.0`, `8.192e3` →
    /// `8192`, when it fits in 64 bits), so the contract's checks and the generated decoder read
    /// the same values from the same bytes.
    var canonical: JSONValue {
        switch self {
        case let .object(members): return .object(members.map { ($0.key, $0.value.canonical) })
        case let .array(items): return .array(items.map(\.canonical))
        case let .number(text): return .number(JSONNumber.integerText(text) ?? text)
        default: return self
        }
    }

    /// Compact JSON text.
    var serialized: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case let .object(members):
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.string(member.key).write(to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let .array(items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .string(text):
            out.append(UInt8(ascii: "\""))
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += Array("\\\"".utf8)
                case "\\": out += Array("\\\\".utf8)
                case "\n": out += Array("\\n".utf8)
                case "\r": out += Array("\\r".utf8)
                case "\t": out += Array("\\t".utf8)
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    out += Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
                default: out += Array(String(scalar).utf8)
                }
            }
            out.append(UInt8(ascii: "\""))
        case let .number(text): out += Array(text.utf8)
        case let .bool(value): out += Array((value ? "true" : "false").utf8)
        case .null: out += Array("null".utf8)
        }
    }
}

extension JSONNumber {
    /// `text` as an integer literal when its value is a whole number that fits in 64 bits.
    static func integerText(_ text: String) -> String? {
        if isInteger(text) { return nil }
        var body = Substring(text)
        let negative = body.hasPrefix("-")
        if negative { body = body.dropFirst() }
        var exponent = 0
        if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            guard let value = Int(body[body.index(after: e)...]), abs(value) <= 40 else { return nil }
            exponent = value
            body = body[..<e]
        }
        var digits = String(body)
        if let dot = body.firstIndex(of: ".") {
            let fraction = body[body.index(after: dot)...]
            digits = String(body[..<dot]) + fraction
            exponent -= fraction.count
        }
        if exponent < 0 {
            guard digits.count >= -exponent, digits.suffix(-exponent).allSatisfy({ $0 == "0" }) else { return nil }
            digits = String(digits.dropLast(-exponent))
        } else {
            digits += String(repeating: "0", count: exponent)
        }
        let trimmed = digits.drop { $0 == "0" }
        let canonical = trimmed.isEmpty ? "0" : (negative ? "-" : "") + trimmed
        return Int64(canonical) != nil ? canonical : nil
    }
}
