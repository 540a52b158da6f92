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

    /// The column as a JSON string literal, escaped exactly as `JSONText.string`, or `null`.
    /// Room for the worst case (every byte `\u00XX`) is made once; then bytes go in by pointer.
    static func string(_ row: OpaquePointer, _ column: AuditColumn, _ out: inout ByteBuffer) {
        guard sqlite3_column_type(row, column.rawValue) != SQLITE_NULL, let text = sqlite3_column_text(row, column.rawValue) else {
            out.append(null)
            return
        }
        let count = Int(sqlite3_column_bytes(row, column.rawValue))
        out.reserve(6 * count + 2)
        var cursor = out.base + out.count
        cursor.pointee = quote
        cursor += 1
        var start = 0
        for index in 0..<count {
            let byte = text[index]
            guard byte < 0x20 || byte == quote || byte == backslash else { continue }
            if start < index {
                cursor.update(from: text + start, count: index - start)
                cursor += index - start
            }
            start = index + 1
            cursor.pointee = backslash
            switch byte {
            case quote, backslash: cursor[1] = byte; cursor += 2
            case UInt8(ascii: "\n"): cursor[1] = UInt8(ascii: "n"); cursor += 2
            case UInt8(ascii: "\r"): cursor[1] = UInt8(ascii: "r"); cursor += 2
            case UInt8(ascii: "\t"): cursor[1] = UInt8(ascii: "t"); cursor += 2
            default:
                cursor[1] = UInt8(ascii: "u"); cursor[2] = UInt8(ascii: "0"); cursor[3] = UInt8(ascii: "0")
                cursor[4] = hexDigit(byte >> 4); cursor[5] = hexDigit(byte & 0xf)
                cursor += 6
            }
        }
        if start < count {
            cursor.update(from: text + start, count: count - start)
            cursor += count - start
        }
        cursor.pointee = quote
        cursor += 1
        out.count = cursor - out.base
    }

    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")

    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// Whether the column is NULL.
    static func isNull(_ row: OpaquePointer, _ column: AuditColumn) -> Bool {
        sqlite3_column_type(row, column.rawValue) == SQLITE_NULL
    }

    /// The column (a blob) as `"` lowercase hex `"`.
    static func hex(_ row: OpaquePointer, _ column: AuditColumn, _ out: inout ByteBuffer) {
        let count = Int(sqlite3_column_bytes(row, column.rawValue))
        out.reserve(2 * count + 2)
        out.append(quote)
        if let bytes = sqlite3_column_blob(row, column.rawValue)?.assumingMemoryBound(to: UInt8.self) {
            for index in 0..<count {
                out.append(hexDigit(bytes[index] >> 4))
                out.append(hexDigit(bytes[index] & 0xf))
            }
        }
        out.append(quote)
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

    /// `value` in decimal, as `String(value)` writes it.
    mutating func appendDecimal(_ value: Int64) {
        reserve(20)
        if value == 0 { return append(UInt8(ascii: "0")) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var magnitude = value.magnitude
        var length = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[19 - length] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                length += 1
            }
            if value < 0 { append(UInt8(ascii: "-")) }
            append(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + 20 - length, length)
        }
    }
}
