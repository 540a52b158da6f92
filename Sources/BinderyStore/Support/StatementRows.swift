import Foundation
import GRDB
import GRDBSQLite

/// A value bound to a statement's `?` parameter by `Statement.forEachRow`.
protocol SQLParameter {
    /// Binds the value to parameter `index` (1-based) of `statement`; SQLite's result code.
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32
}

extension String: SQLParameter {
    /// Bound with its length, every byte (a NUL included, which a C string would end at);
    /// empty text is empty, not NULL.
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        var text = self
        return text.withUTF8 { bytes in
            guard let start = bytes.baseAddress, !bytes.isEmpty else { return sqlite3_bind_text(statement, index, "", 0, sqliteTransient) }
            return start.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                sqlite3_bind_text(statement, index, $0, Int32(bytes.count), sqliteTransient)
            }
        }
    }
}

extension Int: SQLParameter {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        sqlite3_bind_int64(statement, index, Int64(self))
    }
}

/// `SQLITE_TRANSIENT`, a macro Swift cannot import: SQLite copies the bound text.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

extension Statement {
    /// Runs the statement with `parameters` bound in order (as many as it has `?`), handing
    /// each result row to `body` read in place from SQLite's buffers; the row must not outlive
    /// the call. The statement is reset after, which ends its read, and must not be running
    /// already (`body` cannot run it again). A step interrupted because the task was cancelled
    /// throws `CancellationError`, as GRDB's own steps do.
    /// A GRDB `Row` cursor costs more than the reads it serves on one-row and one-page queries:
    /// setting up its row lowercases every column name into a dictionary (perf on `GET /v1/vms/{id}`:
    /// 11% of the request's CPU in the cursor and row set-up).
    func forEachRow(_ parameters: [any SQLParameter], _ body: (StatementRow) throws -> Void) throws {
        let handle = sqliteStatement
        precondition(sqlite3_stmt_busy(handle) == 0, "forEachRow on a statement that is running: \(sql)")
        guard parameters.count == Int(sqlite3_bind_parameter_count(handle)) else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "\(parameters.count) parameters for \(sqlite3_bind_parameter_count(handle)) placeholders",
                                sql: sql)
        }
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        defer { sqlite3_reset(handle) }
        for (offset, parameter) in parameters.enumerated() {
            let code = parameter.bind(to: handle, at: Int32(offset + 1))
            guard code == SQLITE_OK else { throw failure(code) }
        }
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else {
                if code == SQLITE_INTERRUPT, Task.isCancelled { throw CancellationError() }
                throw failure(code)
            }
            try body(StatementRow(handle: handle))
        }
    }

    /// The rows `forEachRow` reads, each made into a value by `make`.
    func map<T>(_ parameters: [any SQLParameter], _ make: (StatementRow) throws -> T) throws -> [T] {
        var values: [T] = []
        try forEachRow(parameters) { values.append(try make($0)) }
        return values
    }

    /// The error for result code `code`, with SQLite's message and this statement's SQL.
    private func failure(_ code: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(sqliteStatement))), sql: sql)
    }
}

/// The current row of a stepped statement, its columns read in place by index (0-based). A
/// NULL read as text is empty, as an integer 0: callers read the optional forms where the
/// schema allows NULL.
struct StatementRow {
    /// The statement, stepped to this row.
    let handle: OpaquePointer

    /// Whether column `index` is NULL.
    func isNull(_ index: Int) -> Bool { sqlite3_column_type(handle, Int32(index)) == SQLITE_NULL }

    /// Column `index` as text.
    func text(_ index: Int) -> String {
        guard let bytes = sqlite3_column_text(handle, Int32(index)) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, Int32(index)))), as: UTF8.self)
    }

    /// Column `index` as text, nil when NULL.
    func optionalText(_ index: Int) -> String? { isNull(index) ? nil : text(index) }

    /// Column `index` as a 64-bit integer.
    func int64(_ index: Int) -> Int64 { sqlite3_column_int64(handle, Int32(index)) }

    /// Column `index` as an integer.
    func integer(_ index: Int) -> Int { Int(int64(index)) }

    /// Column `index` as an integer, nil when NULL.
    func optionalInteger(_ index: Int) -> Int? { isNull(index) ? nil : integer(index) }

    /// How column `index`'s text sorts against `text`, bytewise as SQLite's BINARY collation
    /// sorts: negative before, zero equal, positive after (compared in place, nothing copied).
    func compareText(_ index: Int, to text: String) -> Int {
        let bytes = sqlite3_column_text(handle, Int32(index))
        let count = Int(sqlite3_column_bytes(handle, Int32(index)))
        var text = text
        return text.withUTF8 { other in
            let shared = min(count, other.count)
            guard shared > 0, let bytes, let start = other.baseAddress else { return count - other.count }
            let order = Int(memcmp(bytes, start, shared))
            return order != 0 ? order : count - other.count
        }
    }
}
