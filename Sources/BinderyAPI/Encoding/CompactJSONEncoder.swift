import BinderyStore
import Foundation

/// Encodes the generated types to the bytes the generated code's `JSONEncoder` writes with the
/// API's configuration (`APIHandler.codingConfiguration`: sorted keys, unescaped slashes,
/// RFC 3339 dates with milliseconds), at a fraction of its cost: values go into a small tree
/// of enum nodes, and the tree is written once into one buffer. The read path answers on the
/// event loop with it; `LoopReadsTests` holds it equal to `JSONEncoder` byte for byte.
struct CompactJSONEncoder {
    /// `value` as compact JSON.
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let root = JSONNodeEncoder()
        try root.encodeValue(value)
        var out: [UInt8] = []
        out.reserveCapacity(512)
        root.node.write(to: &out)
        return out
    }
}

/// A JSON value being built.
enum JSONNode {
    case null
    case bool(Bool)
    case int(Int64)
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case object(JSONObject)
    case array(JSONArray)

    /// Appends the node's JSON text.
    func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: [0x6e, 0x75, 0x6c, 0x6c])
        case let .bool(value): value ? out.append(contentsOf: [0x74, 0x72, 0x75, 0x65]) : out.append(contentsOf: [0x66, 0x61, 0x6c, 0x73, 0x65])
        case let .int(value): Self.writeInteger(value, to: &out)
        case let .unsigned(value): out.append(contentsOf: String(value).utf8)
        case let .double(value): out.append(contentsOf: Self.text(of: value).utf8)
        case let .string(value): JSONBytes.string(value, &out)
        case let .object(object):
            out.append(UInt8(ascii: "{"))
            // Keys in UTF-8 byte order, as JSONEncoder's .sortedKeys; the generated code
            // mostly declares them out of order, so this sorts almost every object.
            let entries = object.entries.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            var first = true
            for (index, entry) in entries.enumerated() {
                // The sort is stable: of members with one key, the last set is the last in its run.
                if index + 1 < entries.count && entries[index + 1].key == entry.key { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                JSONBytes.string(entry.key, &out)
                out.append(UInt8(ascii: ":"))
                entry.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let .array(array):
            out.append(UInt8(ascii: "["))
            for (index, element) in array.elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                element.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    private static func writeInteger(_ value: Int64, to out: inout [UInt8]) {
        if value >= 0 && value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits and a sign
        withUnsafeMutableBytes(of: &digits) { buffer in
            var magnitude = value.magnitude
            var cursor = buffer.count
            repeat {
                cursor -= 1
                buffer[cursor] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                cursor -= 1
                buffer[cursor] = UInt8(ascii: "-")
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[cursor...]))
        }
    }

    /// A double as JSONEncoder writes it: integral values without a fraction, others in
    /// Swift's shortest round-trip form.
    private static func text(of value: Double) -> String {
        if value.rounded() == value && value.magnitude < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

/// An object's members, in the order encoded; a reference so a container can keep adding.
final class JSONObject {
    var entries: [(key: String, value: JSONNode)] = []

    /// Adds a member; a key set again wins when written (as in JSONEncoder).
    func set(_ key: String, _ value: JSONNode) { entries.append((key, value)) }
}

/// An array's elements; a reference so a container can keep adding.
final class JSONArray {
    var elements: [JSONNode] = []
}

/// The `Encoder` one value encodes itself into. Coding paths are not tracked (nothing here
/// fails by path, and building them cost an allocation per member).
final class JSONNodeEncoder: Encoder {
    var node: JSONNode = .null
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(codingPath: [any CodingKey] = []) { self.codingPath = codingPath }

    /// Encodes `value`, with dates as the API writes them.
    func encodeValue<T: Encodable>(_ value: T) throws {
        node = try Self.node(for: value, codingPath: codingPath)
    }

    static func node<T: Encodable>(for value: T, codingPath: [any CodingKey]) throws -> JSONNode {
        // Type identity, not `as?`: a dynamic cast per member was a visible part of the cost.
        if T.self == String.self { return .string(unsafeBitCast(value, to: String.self)) }
        if T.self == Int64.self { return .int(unsafeBitCast(value, to: Int64.self)) }
        if T.self == Int.self { return .int(Int64(unsafeBitCast(value, to: Int.self))) }
        if T.self == Bool.self { return .bool(unsafeBitCast(value, to: Bool.self)) }
        if T.self == Date.self { return .string(Timestamp.format(unsafeBitCast(value, to: Date.self))) }
        let encoder = JSONNodeEncoder(codingPath: codingPath)
        try value.encode(to: encoder)
        return encoder.node
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let object: JSONObject
        if case let .object(existing) = node {
            object = existing
        } else {
            object = JSONObject()
            node = .object(object)
        }
        return KeyedEncodingContainer(KeyedNodeContainer<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let array: JSONArray
        if case let .array(existing) = node {
            array = existing
        } else {
            array = JSONArray()
            node = .array(array)
        }
        return UnkeyedNodeContainer(array: array, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleNodeContainer(encoder: self) }
}

private struct KeyedNodeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let object: JSONObject
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { object.set(key.stringValue, .null) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { object.set(key.stringValue, .bool(value)) }
    mutating func encode(_ value: String, forKey key: Key) throws { object.set(key.stringValue, .string(value)) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { object.set(key.stringValue, .int(value)) }
    mutating func encode(_ value: Int, forKey key: Key) throws { object.set(key.stringValue, .int(Int64(value))) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { object.set(key.stringValue, .int(Int64(value))) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { object.set(key.stringValue, .unsigned(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { object.set(key.stringValue, .double(value)) }
    mutating func encode(_ value: Float, forKey key: Key) throws { object.set(key.stringValue, .double(Double(value))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { object.set(key.stringValue, .int(Int64(value))) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { object.set(key.stringValue, .int(Int64(value))) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { object.set(key.stringValue, .unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { object.set(key.stringValue, .int(Int64(value))) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { object.set(key.stringValue, .int(Int64(value))) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { object.set(key.stringValue, .int(Int64(value))) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        object.set(key.stringValue, try JSONNodeEncoder.node(for: value, codingPath: codingPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = JSONObject()
        object.set(key.stringValue, .object(nested))
        return KeyedEncodingContainer(KeyedNodeContainer<NestedKey>(object: nested, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = JSONArray()
        object.set(key.stringValue, .array(nested))
        return UnkeyedNodeContainer(array: nested, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder { SlotEncoder(codingPath: codingPath) { [object] in object.set("super", $0) } }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        SlotEncoder(codingPath: codingPath) { [object] in object.set(key.stringValue, $0) }
    }
}

private struct UnkeyedNodeContainer: UnkeyedEncodingContainer {
    let array: JSONArray
    let codingPath: [any CodingKey]
    var count: Int { array.elements.count }

    mutating func encodeNil() throws { array.elements.append(.null) }
    mutating func encode(_ value: Bool) throws { array.elements.append(.bool(value)) }
    mutating func encode(_ value: String) throws { array.elements.append(.string(value)) }
    mutating func encode(_ value: Int64) throws { array.elements.append(.int(value)) }
    mutating func encode(_ value: Int) throws { array.elements.append(.int(Int64(value))) }
    mutating func encode(_ value: Double) throws { array.elements.append(.double(value)) }
    mutating func encode(_ value: Float) throws { array.elements.append(.double(Double(value))) }
    mutating func encode(_ value: Int8) throws { array.elements.append(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { array.elements.append(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { array.elements.append(.int(Int64(value))) }
    mutating func encode(_ value: UInt) throws { array.elements.append(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { array.elements.append(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { array.elements.append(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { array.elements.append(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { array.elements.append(.unsigned(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        array.elements.append(try JSONNodeEncoder.node(for: value, codingPath: codingPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = JSONObject()
        array.elements.append(.object(nested))
        return KeyedEncodingContainer(KeyedNodeContainer<NestedKey>(object: nested, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = JSONArray()
        array.elements.append(.array(nested))
        return UnkeyedNodeContainer(array: nested, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder {
        let index = array.elements.count
        array.elements.append(.null)
        return SlotEncoder(codingPath: codingPath) { [array] in array.elements[index] = $0 }
    }
}

private struct SingleNodeContainer: SingleValueEncodingContainer {
    let encoder: JSONNodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { encoder.node = .null }
    mutating func encode(_ value: Bool) throws { encoder.node = .bool(value) }
    mutating func encode(_ value: String) throws { encoder.node = .string(value) }
    mutating func encode(_ value: Int64) throws { encoder.node = .int(value) }
    mutating func encode(_ value: Int) throws { encoder.node = .int(Int64(value)) }
    mutating func encode(_ value: Int32) throws { encoder.node = .int(Int64(value)) }
    mutating func encode(_ value: UInt64) throws { encoder.node = .unsigned(value) }
    mutating func encode(_ value: Double) throws { encoder.node = .double(value) }
    mutating func encode(_ value: Float) throws { encoder.node = .double(Double(value)) }
    mutating func encode(_ value: Int8) throws { encoder.node = .int(Int64(value)) }
    mutating func encode(_ value: Int16) throws { encoder.node = .int(Int64(value)) }
    mutating func encode(_ value: UInt) throws { encoder.node = .unsigned(UInt64(value)) }
    mutating func encode(_ value: UInt8) throws { encoder.node = .int(Int64(value)) }
    mutating func encode(_ value: UInt16) throws { encoder.node = .int(Int64(value)) }
    mutating func encode(_ value: UInt32) throws { encoder.node = .int(Int64(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws { encoder.node = try JSONNodeEncoder.node(for: value, codingPath: codingPath) }
}

/// An encoder whose result lands in a slot of its parent once it is asked for a container.
private final class SlotEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    private let inner: JSONNodeEncoder
    private let store: (JSONNode) -> Void

    init(codingPath: [any CodingKey], store: @escaping (JSONNode) -> Void) {
        self.codingPath = codingPath
        self.store = store
        inner = JSONNodeEncoder(codingPath: codingPath)
    }

    deinit { store(inner.node) }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { inner.container(keyedBy: type) }
    func unkeyedContainer() -> any UnkeyedEncodingContainer { inner.unkeyedContainer() }
    func singleValueContainer() -> any SingleValueEncodingContainer { inner.singleValueContainer() }
}
