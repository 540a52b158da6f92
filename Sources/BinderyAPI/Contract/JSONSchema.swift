import BinderyStore
import Foundation

/// One schema of `openapi.yaml`, with the keywords the server enforces itself: type,
/// properties, required, additionalProperties, items, min/maxItems, min/maxProperties,
/// min/maxLength, pattern, minimum/maximum, enum and the formats int32, int64 and date-time.
final class JSONSchema: Sendable {
    /// What to do with object members the schema does not name.
    enum Additional: Sendable {
        /// Anything goes.
        case allowed
        /// Refused.
        case forbidden
        /// Each must match this schema.
        case schema(JSONSchema)
    }

    let types: Set<String>
    /// `types` as `JSONValue.SchemaType` bits (0: any type), tested per value without hashing names.
    private let typeMask: UInt8
    let properties: [String: JSONSchema]
    let required: [String]
    let additional: Additional
    let items: JSONSchema?
    let minItems: Int?, maxItems: Int?
    let minProperties: Int?, maxProperties: Int?
    let minLength: Int?, maxLength: Int?
    let pattern: Pattern?
    let minimum: String?, maximum: String?
    let enumeration: [String]?
    let format: String?
    let multipleOf: Int64?
    let propertyNames: JSONSchema?
    let summary: String?

    /// A compiled `pattern` (ECMA-262 subset that NSRegularExpression reads the same way).
    /// Simple ones (literals and classes) are matched by `SimplePattern`, without ICU.
    struct Pattern: @unchecked Sendable {
        let source: String
        let expression: NSRegularExpression
        let simple: SimplePattern?

        init(source: String, expression: NSRegularExpression) {
            self.source = source
            self.expression = expression
            simple = SimplePattern(source)
        }

        func matches(_ text: String) -> Bool {
            if let simple { return simple.matches(text) }
            return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
    }

    /// Builds a schema from its YAML mapping; `$ref`s are resolved through `resolve`.
    init(_ node: [String: Any], resolve: (String) throws -> [String: Any], depth: Int = 0) throws {
        guard depth < 32 else { throw ContractError("schema nesting deeper than 32 (a $ref loop?)") }
        var node = node
        if let reference = node["$ref"] as? String { node = try resolve(reference) }
        func child(_ value: Any?) throws -> JSONSchema? {
            guard let mapping = value as? [String: Any] else { return nil }
            return try JSONSchema(mapping, resolve: resolve, depth: depth + 1)
        }
        func integer(_ key: String) -> Int? { (node[key] as? Int) }
        func numberText(_ key: String) -> String? {
            if let value = node[key] as? Int { return String(value) }
            if let value = node[key] as? Double, value == value.rounded(), abs(value) < 1e18 { return String(Int64(value)) }
            return nil
        }
        switch node["type"] {
        case let name as String: types = [name]
        case let names as [String]: types = Set(names)
        default: types = []
        }
        typeMask = try types.reduce(0) { mask, name in
            guard let type = JSONValue.SchemaType(name: name) else { throw ContractError("unknown schema type \(name)") }
            return mask | type.bit
        }
        var properties: [String: JSONSchema] = [:]
        for (name, value) in node["properties"] as? [String: Any] ?? [:] {
            properties[name] = try child(value)
        }
        self.properties = properties
        required = node["required"] as? [String] ?? []
        switch node["additionalProperties"] {
        case let flag as Bool: additional = flag ? .allowed : .forbidden
        case let mapping as [String: Any]: additional = .schema(try JSONSchema(mapping, resolve: resolve, depth: depth + 1))
        default: additional = .allowed
        }
        items = try child(node["items"])
        minItems = integer("minItems")
        maxItems = integer("maxItems")
        minProperties = integer("minProperties")
        maxProperties = integer("maxProperties")
        minLength = integer("minLength")
        maxLength = integer("maxLength")
        if let source = node["pattern"] as? String {
            do {
                pattern = Pattern(source: source, expression: try NSRegularExpression(pattern: source))
            } catch {
                throw ContractError("pattern \(source) does not compile")
            }
        } else {
            pattern = nil
        }
        minimum = numberText("minimum")
        maximum = numberText("maximum")
        enumeration = (node["enum"] as? [Any])?.map { "\($0)" }
        format = node["format"] as? String
        multipleOf = (node["multipleOf"] as? Int).map(Int64.init)
        propertyNames = try child(node["propertyNames"])
        summary = node["description"] as? String
    }

    /// Checks `value`, adding one problem per offending place (JSON pointer, plain sentence).
    func check(_ value: JSONValue, at pointer: String, into problems: inout [(pointer: String, detail: String)]) {
        var path = JSONPath(pointer)
        check(value, at: &path, into: &problems)
    }

    /// Checks `value` at `path`, whose pointer is written only when a problem names it.
    private func check(_ value: JSONValue, at path: inout JSONPath, into problems: inout [(pointer: String, detail: String)]) {
        guard problems.count < 100 else { return }
        if typeMask != 0 {
            let actual = value.schemaType
            // An integer is also a number.
            guard typeMask & actual.bit != 0 || (actual == .integer && typeMask & JSONValue.SchemaType.number.bit != 0) else {
                problems.append((path.pointer, "must be \(Self.describe(types))"))
                return
            }
        }
        switch value {
        case let .object(members): checkObject(members, at: &path, into: &problems)
        case let .array(elements): checkArray(elements, at: &path, into: &problems)
        case let .string(text): checkString(text, at: path, into: &problems)
        case let .number(text): checkNumber(text, at: path, into: &problems)
        case .bool, .null: break
        }
        if let enumeration {
            let text: String?
            switch value {
            case let .string(string): text = string
            case let .number(number): text = JSONNumber.int64(number).map(String.init) ?? number
            default: text = nil
            }
            if let text, !enumeration.contains(text) {
                problems.append((path.pointer, "must be one of \(enumeration.joined(separator: ", "))"))
            }
        }
    }

    private func checkObject(_ members: [(key: String, value: JSONValue)], at path: inout JSONPath,
                             into problems: inout [(pointer: String, detail: String)]) {
        if let maxProperties, members.count > maxProperties {
            problems.append((path.pointer, "must have at most \(maxProperties) entries"))
            return
        }
        if let minProperties, members.count < minProperties {
            problems.append((path.pointer, "must have at least \(minProperties) entries"))
        }
        if let propertyNames {
            for (key, _) in members {
                path.push(.key(key))
                propertyNames.check(.string(key), at: &path, into: &problems)
                path.pop()
            }
        }
        // A handful of names, each looked for among the members: no set built per object.
        for name in required where !members.contains(where: { $0.key == name }) {
            path.push(.key(name))
            problems.append((path.pointer, "is required"))
            path.pop()
        }
        for (key, member) in members {
            path.push(.key(key))
            defer { path.pop() }
            if let schema = properties[key] {
                schema.check(member, at: &path, into: &problems)
                continue
            }
            switch additional {
            case .allowed: break
            case .forbidden: problems.append((path.pointer, "is not a field of this request"))
            case let .schema(schema): schema.check(member, at: &path, into: &problems)
            }
        }
    }

    private func checkArray(_ elements: [JSONValue], at path: inout JSONPath, into problems: inout [(pointer: String, detail: String)]) {
        if let maxItems, elements.count > maxItems {
            problems.append((path.pointer, "must have at most \(maxItems) items"))
            return
        }
        if let minItems, elements.count < minItems {
            problems.append((path.pointer, "must have at least \(minItems) items"))
        }
        guard let items else { return }
        for (index, element) in elements.enumerated() {
            path.push(.index(index))
            items.check(element, at: &path, into: &problems)
            path.pop()
        }
    }

    private func checkString(_ text: String, at path: JSONPath, into problems: inout [(pointer: String, detail: String)]) {
        let length = text.unicodeScalars.count
        if let maxLength, length > maxLength {
            problems.append((path.pointer, minLength.map { "must be \($0) to \(maxLength) characters" } ?? "must be at most \(maxLength) characters"))
            return
        }
        if let minLength, length < minLength {
            problems.append((path.pointer, minLength == 1 ? "must not be empty" : "must be at least \(minLength) characters"))
            return
        }
        if let pattern, !pattern.matches(text) {
            problems.append((path.pointer, "must match the pattern \(pattern.source)" + (summary.map { " (\($0))" } ?? "")))
            return
        }
        if format == "date-time", Timestamp.parse(text) == nil {
            problems.append((path.pointer, "must be an RFC 3339 date-time like 2026-01-31T12:00:00Z"))
        }
    }

    private func checkNumber(_ text: String, at path: JSONPath, into problems: inout [(pointer: String, detail: String)]) {
        let isInteger = JSONNumber.isInteger(text)
        let range = { () -> String in
            switch (self.minimum, self.maximum) {
            case let (low?, high?): return "between \(low) and \(high)"
            case let (low?, nil): return "at least \(low)"
            case let (nil, high?): return "at most \(high)"
            case (nil, nil): return ""
            }
        }()
        if isInteger {
            if let (low, high) = Self.formatBounds[format ?? ""],
               JSONNumber.compareIntegers(text, low) < 0 || JSONNumber.compareIntegers(text, high) > 0 {
                problems.append((path.pointer, "must be an integer that fits in \(format == "int32" ? 32 : 64) bits"))
                return
            }
            if let minimum, JSONNumber.compareIntegers(text, minimum) < 0 { problems.append((path.pointer, "must be \(range)")); return }
            if let maximum, JSONNumber.compareIntegers(text, maximum) > 0 { problems.append((path.pointer, "must be \(range)")); return }
            if let multipleOf, multipleOf > 0, let value = JSONNumber.int64(text), value % multipleOf != 0 {
                problems.append((path.pointer, "must be a multiple of \(multipleOf)"))
                return
            }
        } else if let value = Double(text) {
            if let minimum, let low = Double(minimum), value < low { problems.append((path.pointer, "must be \(range)")); return }
            if let maximum, let high = Double(maximum), value > high { problems.append((path.pointer, "must be \(range)")); return }
        }
    }

    private static let formatBounds: [String: (String, String)] = [
        "int32": (String(Int32.min), String(Int32.max)),
        "int64": (String(Int64.min), String(Int64.max)),
    ]

    /// `a string`, `an integer or null`, ...
    static func describe(_ types: Set<String>) -> String {
        let names: [String: String] = ["object": "an object", "array": "an array", "string": "a string", "integer": "an integer",
                                       "number": "a number", "boolean": "true or false", "null": "null"]
        return types.sorted().map { names[$0] ?? $0 }.joined(separator: " or ")
    }
}

/// A contract that cannot be read.
struct ContractError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
