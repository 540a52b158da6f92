import Foundation
import GRDBSQLite

/// The columns of `audit_events`, in the order `list` selects them.
enum AuditColumn: Int32 {
    case seq, time, actorIdentity, actorRole, remoteAddress, requestID, action, resourceType
    case resourceID, outcome, httpStatus, before, after, previousHash, hash

    /// The SELECT list in this order.
    static let list = """
        seq, time, actor_identity, actor_role, remote_address, request_id, action, resource_type, \
        resource_id, outcome, http_status, before_json, after_json, prev_hash, hash
        """
}

/// Reading an audit row's columns straight from SQLite's buffers into a `ByteBuffer`, as JSON.
enum RowText {
    static let null = Array("null".utf8)

    static func bytes(_ row: OpaquePointer, _ column: AuditColumn) -> [UInt8]? {
        guard sqlite3_column_type(row, column.rawValue) == SQLITE_BLOB, let bytes = sqlite3_column_blob(row, column.rawValue) else { return nil }
        return [UInt8](UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(row, column.rawValue))))
    }

    static func blob(_ row: OpaquePointer, _ column: AuditColumn, equals expected: [UInt8]) -> Bool {
        guard sqlite3_column_type(row, column.rawValue) == SQLITE_BLOB else { return false }
        let count = Int(sqlite3_column_bytes(row, column.rawValue))
        guard count == expected.count, let bytes = sqlite3_column_blob(row, column.rawValue) else { return false }
        return expected.withUnsafeBytes { memcmp($0.baseAddress!, bytes, count) == 0 }
    }

    /// The column as a JSON string literal, escaped exactly as `JSONText.string` (its
    /// `writeQuoted`; with `shorthands`, as JSONEncoder escapes), or `null`.
    static func string(_ row: OpaquePointer, _ column: AuditColumn, _ out: inout ByteBuffer, shorthands: Bool = false) {
        guard sqlite3_column_type(row, column.rawValue) != SQLITE_NULL, let text = sqlite3_column_text(row, column.rawValue) else {
            out.append(null)
            return
        }
        let count = Int(sqlite3_column_bytes(row, column.rawValue))
        out.reserve(JSONText.maximumQuotedLength(count))
        out.count += JSONText.writeQuoted(UnsafeBufferPointer(start: text, count: count), to: out.base + out.count, shorthands: shorthands)
    }

    /// Whether the column is NULL.
    static func isNull(_ row: OpaquePointer, _ column: AuditColumn) -> Bool {
        sqlite3_column_type(row, column.rawValue) == SQLITE_NULL
    }

    /// The column (a blob) as `"` lowercase hex `"`.
    static func hex(_ row: OpaquePointer, _ column: AuditColumn, _ out: inout ByteBuffer) {
        let count = Int(sqlite3_column_bytes(row, column.rawValue))
        out.reserve(2 * count + 2)
        out.append(UInt8(ascii: "\""))
        if let bytes = sqlite3_column_blob(row, column.rawValue)?.assumingMemoryBound(to: UInt8.self) {
            for index in 0..<count {
                out.append(JSONText.hexDigit(bytes[index] >> 4))
                out.append(JSONText.hexDigit(bytes[index] & 0xf))
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// A growable byte buffer written through pointers: the chain walk's one allocation.
struct ByteBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    /// Bytes written.
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    func deallocate() { base.deallocate() }

    /// Makes room for `extra` more bytes.
    mutating func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        let grown = Swift.max(capacity * 2, count + extra)
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        new.update(from: base, count: count)
        base.deallocate()
        base = new
        capacity = grown
    }

    mutating func append(_ bytes: UnsafePointer<UInt8>, _ length: Int) {
        reserve(length)
        (base + count).update(from: bytes, count: length)
        count += length
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0.baseAddress!, $0.count) }
    }

    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    /// `value` in decimal, as `String(value)` writes it: digits written least significant
    /// first, then reversed in place.
    mutating func appendDecimal(_ value: Int64) {
        reserve(21)  // a sign and 20 digits
        if value < 0 { append(UInt8(ascii: "-")) }
        let start = count
        var magnitude = value.magnitude
        repeat {
            base[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            count += 1
            magnitude /= 10
        } while magnitude > 0
        var digits = UnsafeMutableBufferPointer(start: base + start, count: count - start)
        digits.reverse()
    }
}
