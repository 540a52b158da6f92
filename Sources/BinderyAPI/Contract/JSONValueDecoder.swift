import Foundation

/// Decodes a generated type from the document the contract's checks already parsed, instead of
/// parsing the request's bytes a second time with `JSONDecoder`. Strict, as `JSONDecoder` is
/// with the API's configuration: a string is only a string, an integer only an integral number
/// that fits, a date only RFC 3339 text (`RFC3339.Transcoder`); a missing key or `null` is nil
/// for an optional. Anything it does not decode throws, and the caller then takes the generated
/// path, whose `JSONDecoder` has the last word (`JSONValueDecoderTests` holds the two equal).
enum JSONValueDecoder {
    /// `value` as a `T`.
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try ValueDecoder.unbox(value, as: type, at: nil)
    }
}

/// Where a value sits, as a link to its parent: the array `codingPath` asks for is made only
/// when something asks (an error), not for every member decoded.
private final class CodingPath {
    let parent: CodingPath?
    let key: any CodingKey

    init(_ parent: CodingPath?, _ key: any CodingKey) {
        self.parent = parent
        self.key = key
    }

    /// The keys from the document's root down to `node`.
    static func keys(_ node: CodingPath?) -> [any CodingKey] {
        var keys: [any CodingKey] = []
        var node = node
        while let current = node {
            keys.append(current.key)
            node = current.parent
        }
        return keys.reversed()
    }
}

/// One value being decoded.
private struct ValueDecoder: Decoder {
    let value: JSONValue
    let path: CodingPath?
    var codingPath: [any CodingKey] { CodingPath.keys(path) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case let .object(members) = value else { throw Self.mismatch([String: Any].self, value, codingPath) }
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, path: path))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case let .array(elements) = value else { throw Self.mismatch([Any].self, value, codingPath) }
        return UnkeyedContainer(elements: elements, path: path)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValue(value: value, path: path) }

    /// `value` as a `T`: dates as the API's transcoder reads them; types `JSONDecoder` treats
    /// specially that the API does not use (Data, URL, Decimal) are refused rather than guessed.
    static func unbox<T: Decodable>(_ value: JSONValue, as type: T.Type, at path: CodingPath?) throws -> T {
        if type == Date.self {
            guard case let .string(text) = value else { throw mismatch(type, value, CodingPath.keys(path)) }
            return try RFC3339.Transcoder().decode(text) as! T
        }
        if type == Data.self || type == URL.self || type == Decimal.self {
            throw DecodingError.dataCorrupted(.init(codingPath: CodingPath.keys(path), debugDescription: "\(type) is left to JSONDecoder"))
        }
        return try T(from: ValueDecoder(value: value, path: path))
    }

    static func string(_ value: JSONValue, at path: @autoclosure () -> CodingPath?) throws -> String {
        guard case let .string(text) = value else { throw mismatch(String.self, value, CodingPath.keys(path())) }
        return text
    }

    static func bool(_ value: JSONValue, at path: @autoclosure () -> CodingPath?) throws -> Bool {
        guard case let .bool(flag) = value else { throw mismatch(Bool.self, value, CodingPath.keys(path())) }
        return flag
    }

    /// An integer: integral number text (the checks made integral numbers plain) that fits.
    static func integer<T: FixedWidthInteger>(_ value: JSONValue, as type: T.Type, at path: @autoclosure () -> CodingPath?) throws -> T {
        guard case let .number(text) = value else { throw mismatch(type, value, CodingPath.keys(path())) }
        guard JSONNumber.isInteger(text), let integer = T(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: CodingPath.keys(path()), debugDescription: "\(text) does not fit in \(type)"))
        }
        return integer
    }

    /// A finite floating-point number.
    static func floating<T: BinaryFloatingPoint & LosslessStringConvertible>(_ value: JSONValue, as type: T.Type,
                                                                            at path: @autoclosure () -> CodingPath?) throws -> T {
        guard case let .number(text) = value else { throw mismatch(type, value, CodingPath.keys(path())) }
        guard let number = T(text), number.isFinite else {
            throw DecodingError.dataCorrupted(.init(codingPath: CodingPath.keys(path()), debugDescription: "\(text) does not fit in \(type)"))
        }
        return number
    }

    static func mismatch(_ type: Any.Type, _ value: JSONValue, _ codingPath: [any CodingKey]) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "expected \(type), found \(value.schemaType)"))
    }
}

/// An object's members by key: a scan for a few, a dictionary past that.
private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [(key: String, value: JSONValue)]
    let path: CodingPath?
    var codingPath: [any CodingKey] { CodingPath.keys(path) }
    private let index: [String: JSONValue]?

    init(members: [(key: String, value: JSONValue)], path: CodingPath?) {
        self.members = members
        self.path = path
        // The parser refuses duplicate keys, so every key is unique here.
        index = members.count > 16 ? Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }) : nil
    }

    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.key) } }

    func contains(_ key: Key) -> Bool { member(key.stringValue) != nil }

    private func member(_ name: String) -> JSONValue? {
        if let index { return index[name] }
        return members.first { $0.key == name }?.value
    }

    private func require(_ key: Key) throws -> JSONValue {
        guard let value = member(key.stringValue) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no member \(key.stringValue)"))
        }
        return value
    }

    private func path(_ key: Key) -> CodingPath { CodingPath(path, key) }

    func decodeNil(forKey key: Key) throws -> Bool { try require(key) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try ValueDecoder.bool(require(key), at: path(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try ValueDecoder.string(require(key), at: path(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try ValueDecoder.floating(require(key), as: type, at: path(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try ValueDecoder.floating(require(key), as: type, at: path(key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try ValueDecoder.integer(require(key), as: type, at: path(key)) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try ValueDecoder.unbox(require(key), as: type, at: path(key)) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: require(key), path: path(key)).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: require(key), path: path(key)).unkeyedContainer()
    }

    /// The member named `super`, as `JSONDecoder` reads it (null when absent).
    func superDecoder() throws -> any Decoder { ValueDecoder(value: member("super") ?? .null, path: path) }

    func superDecoder(forKey key: Key) throws -> any Decoder { ValueDecoder(value: member(key.stringValue) ?? .null, path: path(key)) }
}

/// An array's elements in order.
private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let path: CodingPath?
    var codingPath: [any CodingKey] { CodingPath.keys(path) }
    private(set) var currentIndex = 0

    init(elements: [JSONValue], path: CodingPath?) {
        self.elements = elements
        self.path = path
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private struct IndexKey: CodingKey {
        let intValue: Int?
        var stringValue: String { "Index \(intValue ?? 0)" }
        init(intValue: Int) { self.intValue = intValue }
        init?(stringValue: String) { nil }
    }

    /// The next element and its coding path; the index moves on only when decoding it succeeds.
    private mutating func next<T>(_ decode: (JSONValue, CodingPath) throws -> T) throws -> T {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(T.self, .init(codingPath: codingPath, debugDescription: "the array has no more elements"))
        }
        let decoded = try decode(elements[currentIndex], CodingPath(path, IndexKey(intValue: currentIndex)))
        currentIndex += 1
        return decoded
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { throw DecodingError.valueNotFound(Any?.self, .init(codingPath: codingPath, debugDescription: "at end")) }
        guard elements[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next { try ValueDecoder.bool($0, at: $1) } }
    mutating func decode(_ type: String.Type) throws -> String { try next { try ValueDecoder.string($0, at: $1) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try next { try ValueDecoder.floating($0, as: type, at: $1) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try next { try ValueDecoder.floating($0, as: type, at: $1) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next { try ValueDecoder.integer($0, as: type, at: $1) } }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next { try ValueDecoder.unbox($0, as: type, at: $1) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next { try ValueDecoder(value: $0, path: $1).container(keyedBy: type) }
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next { try ValueDecoder(value: $0, path: $1).unkeyedContainer() }
    }

    mutating func superDecoder() throws -> any Decoder { try next { ValueDecoder(value: $0, path: $1) } }
}

/// One value, as the whole of what is decoded.
private struct SingleValue: SingleValueDecodingContainer {
    let value: JSONValue
    let path: CodingPath?
    var codingPath: [any CodingKey] { CodingPath.keys(path) }

    func decodeNil() -> Bool { value == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try ValueDecoder.bool(value, at: path) }
    func decode(_ type: String.Type) throws -> String { try ValueDecoder.string(value, at: path) }
    func decode(_ type: Double.Type) throws -> Double { try ValueDecoder.floating(value, as: type, at: path) }
    func decode(_ type: Float.Type) throws -> Float { try ValueDecoder.floating(value, as: type, at: path) }
    func decode(_ type: Int.Type) throws -> Int { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: Int8.Type) throws -> Int8 { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: Int16.Type) throws -> Int16 { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: Int32.Type) throws -> Int32 { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: Int64.Type) throws -> Int64 { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: UInt.Type) throws -> UInt { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try ValueDecoder.integer(value, as: type, at: path) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try ValueDecoder.integer(value, as: type, at: path) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try ValueDecoder.unbox(value, as: type, at: path) }
}
