import Foundation
import GRDB
import GRDBSQLite

/// The audit history as NDJSON, written from SQLite's row buffers: one line per event, the
/// JSON of the API's `AuditEvent` with its keys sorted and absent fields left out (what
/// `JSONEncoder` with `.sortedKeys` writes for the generated type; a test holds them equal).
public enum AuditNDJSON {
    /// What one read produced.
    public struct Lines: Sendable {
        /// The lines, each ending in `\n`.
        public var bytes: [UInt8]
        /// How many events they hold.
        public var events: Int
        /// The seq of the last one (resume after it).
        public var lastSeq: Int?
    }

    /// Lines for the events `query` selects after `query.after`, at most `query.limit` of them,
    /// stopping early once about `maxBytes` are written.
    public static func lines(_ query: AuditChain.Query, maxBytes: Int, in db: Database) throws -> Lines {
        let (sql, arguments) = AuditChain.selection(query, columns: AuditColumn.list)
        let statement = try db.cachedStatement(sql: sql)
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        let row = statement.sqliteStatement
        var out = ByteBuffer(capacity: min(maxBytes, 256 * 1024) + 64 * 1024)  // grows past that for a page with no byte bound
        defer { out.deallocate() }
        var events = 0
        var lastSeq: Int?
        while out.count < maxBytes, try cursor.next() != nil {
            let seq = sqlite3_column_int64(row, AuditColumn.seq.rawValue)
            append(row, seq: seq, to: &out)
            events += 1
            lastSeq = Int(seq)
        }
        return Lines(bytes: [UInt8](UnsafeBufferPointer(start: out.base, count: out.count)), events: events, lastSeq: lastSeq)
    }

    /// A page as the API's `AuditPage` JSON (`{"items":[…],"nextCursor":seq}`, the cursor only
    /// when more events follow), from the same row buffers as the export's lines.
    public static func page(_ query: AuditChain.Query, limit: Int, in db: Database) throws -> [UInt8] {
        var query = query
        query.limit = limit
        let page = try lines(query, maxBytes: .max / 2, in: db)
        var more = false
        if page.events == limit, let lastSeq = page.lastSeq {
            query.after = lastSeq
            query.limit = 1
            more = try lines(query, maxBytes: 1, in: db).events > 0
        }
        var out = Array("{\"items\":[".utf8)
        out.reserveCapacity(page.bytes.count + 48)
        // Lines end in \n, which never occurs inside one (strings escape it): each becomes a comma.
        for byte in page.bytes.dropLast() { out.append(byte == UInt8(ascii: "\n") ? UInt8(ascii: ",") : byte) }
        out.append(UInt8(ascii: "]"))
        if more, let lastSeq = page.lastSeq { out.append(contentsOf: ",\"nextCursor\":\(lastSeq)".utf8) }
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static func key(_ text: String) -> [UInt8] { Array(text.utf8) }
    private static let action = key("{\"action\":"), identity = key(",\"actor\":{\"identity\":"), address = key(",\"remoteAddress\":")
    private static let role = key(",\"role\":"), after = key("},\"after\":"), before = key(",\"before\":"), hash = key(",\"hash\":")
    private static let closeActor = key("}"), status = key(",\"httpStatus\":"), outcome = key(",\"outcome\":")
    private static let previous = key(",\"prevHash\":"), request = key(",\"requestId\":"), resourceID = key(",\"resourceId\":")
    private static let resourceType = key(",\"resourceType\":"), seqKey = key(",\"seq\":"), time = key(",\"time\":"), end = key("}\n")

    private static func append(_ row: OpaquePointer, seq: Int64, to out: inout ByteBuffer) {
        out.append(action); RowText.string(row, .action, &out, shorthands: true)
        out.append(identity); RowText.string(row, .actorIdentity, &out, shorthands: true)
        if !RowText.isNull(row, .remoteAddress) { out.append(address); RowText.string(row, .remoteAddress, &out, shorthands: true) }
        if !RowText.isNull(row, .actorRole) { out.append(role); RowText.string(row, .actorRole, &out, shorthands: true) }
        if !RowText.isNull(row, .after) {
            out.append(after); RowText.string(row, .after, &out, shorthands: true)
        } else {
            out.append(closeActor)
        }
        if !RowText.isNull(row, .before) { out.append(before); RowText.string(row, .before, &out, shorthands: true) }
        out.append(hash); RowText.hex(row, .hash, &out)
        if !RowText.isNull(row, .httpStatus) {
            out.append(status)
            out.appendDecimal(sqlite3_column_int64(row, AuditColumn.httpStatus.rawValue))
        }
        out.append(outcome); RowText.string(row, .outcome, &out, shorthands: true)
        out.append(previous); RowText.hex(row, .previousHash, &out)
        if !RowText.isNull(row, .requestID) { out.append(request); RowText.string(row, .requestID, &out, shorthands: true) }
        if !RowText.isNull(row, .resourceID) { out.append(resourceID); RowText.string(row, .resourceID, &out, shorthands: true) }
        out.append(resourceType); RowText.string(row, .resourceType, &out, shorthands: true)
        out.append(seqKey); out.appendDecimal(seq)
        out.append(time); RowText.string(row, .time, &out, shorthands: true)
        out.append(end)
    }
}
