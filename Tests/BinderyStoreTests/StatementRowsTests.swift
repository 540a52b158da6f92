@testable import BinderyStore
import GRDB
import GRDBSQLite
import Foundation
import XCTest

/// Rows read in place from SQLite's buffers: every column form, bound parameters, errors with
/// SQLite's message, and a read that always ends (the statement reset) however it stops.
final class StatementRowsTests: XCTestCase {
    func testColumnsReadInPlace() throws {
        let database = try DatabaseQueue()
        try database.inDatabase { db in
            let statement = try db.makeStatement(sql: "SELECT 'héllo', NULL, 42, -7, 9223372036854775807, '', 'ab'")
            var rows = 0
            try statement.forEachRow([]) { row in
                rows += 1
                XCTAssertEqual(row.text(0), "héllo")
                XCTAssertFalse(row.isNull(0))
                XCTAssertTrue(row.isNull(1))
                XCTAssertNil(row.optionalText(1))
                XCTAssertNil(row.optionalInteger(1))
                XCTAssertEqual(row.text(1), "", "NULL as text")
                XCTAssertEqual(row.integer(2), 42)
                XCTAssertEqual(row.optionalInteger(2), 42)
                XCTAssertEqual(row.text(2), "42")
                XCTAssertEqual(row.int64(3), -7)
                XCTAssertEqual(row.int64(4), .max)
                XCTAssertEqual(row.optionalText(5), "")
                for (column, other, order) in [(6, "ab", 0), (6, "a", 1), (6, "abc", -1), (6, "b", -1), (6, "aa", 1), (5, "", 0),
                                               (5, "a", -1), (0, "héllo", 0), (0, "hz", 1), (0, "hé", 1), (0, "hállo", 1), (0, "i", -1)] {
                    XCTAssertEqual(row.compareText(column, to: other).signum(), order, "column \(column) against \(other)")
                }
            }
            XCTAssertEqual(rows, 1)
        }
    }

    func testParametersAreBoundInOrderAndEveryRowIsRead() throws {
        let database = try DatabaseQueue()
        let values = try database.write { db -> [String] in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
            for index in 1...50 { try db.execute(sql: "INSERT INTO t (id, name) VALUES (?, ?)", arguments: [index, "n\(index)"]) }
            let statement = try db.makeStatement(sql: "SELECT name FROM t WHERE id > ? AND name != ? ORDER BY id LIMIT ?")
            let first = try statement.map([40, "n42", 5]) { $0.text(0) }
            XCTAssertEqual(first, ["n41", "n43", "n44", "n45", "n46"])
            // The same statement again, new parameters: nothing left of the last run.
            return try statement.map([48, "", 100]) { $0.text(0) }
        }
        XCTAssertEqual(values, ["n49", "n50"])
    }

    /// Text is bound with its length: a NUL inside is part of the value (a C string would end
    /// there and match a shorter id), and empty text is not NULL.
    func testTextParametersAreBoundWhole() throws {
        let database = try DatabaseQueue()
        try database.inDatabase { db in
            let statement = try db.makeStatement(sql: "SELECT length(CAST(? AS BLOB)), ? IS NULL, ? = 'vm-1', hex(?)")
            try statement.forEachRow(["vm-1\u{0}x", "", "vm-1\u{0}x", "é\u{0}"]) { row in
                XCTAssertEqual(row.integer(0), 6)
                XCTAssertEqual(row.integer(1), 0, "empty text is not NULL")
                XCTAssertEqual(row.integer(2), 0, "a NUL does not end the value")
                XCTAssertEqual(row.text(3), "C3A900")
            }
            XCTAssertThrowsError(try statement.forEachRow(["too", "few"]) { _ in }) { error in
                XCTAssertEqual((error as? DatabaseError)?.resultCode, .SQLITE_MISUSE, "\(error)")
            }
        }
    }

    /// A read whose task is cancelled mid-step ends with `CancellationError`, as GRDB's steps do.
    func testACancelledReadThrowsCancellation() async throws {
        let database = try DatabaseQueue()
        let started = Started()
        let read = Task {
            try await database.read { db in
                let endless = try db.makeStatement(sql: "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s) SELECT v FROM s")
                let deadline = Date().addingTimeInterval(20)
                try endless.forEachRow([]) { _ in
                    started.set()
                    if Date() > deadline { throw DatabaseError(message: "the read was never interrupted") }
                }
            }
        }
        while !started.isSet { try await Task.sleep(nanoseconds: 1_000_000) }
        read.cancel()
        do {
            try await read.value
            XCTFail("an endless read returned")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
    }

    func testAFailedStepCarriesSQLitesMessageAndEveryReadEnds() throws {
        let database = try DatabaseQueue()
        try database.inDatabase { db in
            let failing = try db.makeStatement(sql: "SELECT json_extract(?, '$')")
            XCTAssertThrowsError(try failing.forEachRow(["not json"]) { _ in }) { error in
                let error = error as? DatabaseError
                XCTAssertEqual(error?.resultCode, .SQLITE_ERROR)
                XCTAssertTrue(error?.message?.contains("malformed JSON") ?? false, "\(String(describing: error))")
                XCTAssertEqual(error?.sql, "SELECT json_extract(?, '$')")
            }
            XCTAssertEqual(sqlite3_stmt_busy(failing.sqliteStatement), 0)

            let many = try db.makeStatement(sql: "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 10) SELECT v FROM s")
            struct Stop: Error {}
            var seen = 0
            XCTAssertThrowsError(try many.forEachRow([]) { _ in
                seen += 1
                if seen == 3 { throw Stop() }
            })
            XCTAssertEqual(seen, 3)
            XCTAssertEqual(sqlite3_stmt_busy(many.sqliteStatement), 0, "a body that stops early still ends the read")
            var rows = 0
            try many.forEachRow([]) { _ in rows += 1 }
            XCTAssertEqual(rows, 10)
            XCTAssertEqual(sqlite3_stmt_busy(many.sqliteStatement), 0)
        }
    }

    /// What a VM is created with is what its reads give back, at the edges of every column:
    /// a guest address at the top of what the schema stores, no regions, a backing file or none, labels.
    func testAVMReadsBackAsItWasCreated() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        let actor = AuditActor(identity: "spiffe://test/admin", role: "admin", remoteAddress: "127.0.0.1")
        let specs = [
            VMSpec(name: "none", labels: [:], memory: []),
            VMSpec(name: "two \"quoted\" é", labels: ["a": "1", "b": "ü"], memory: [
                MemoryRegion(guestAddress: 0x7fff_ffff_0000_0000, size: 1 << 30),
                MemoryRegion(guestAddress: 0x1000, size: 4096, backingPath: "/dev/shm/guest", backingOffset: 0xffff_f000),
            ]),
        ]
        let (created, read, viewed) = try await store.write { db in
            let created = try specs.map { try VMRepository.create($0, actor: actor, in: db) }
            let read = try created.map { try VMRepository.fetch(id: $0.id, in: db) }
            let viewed = try created.map { try VMViews.visible($0.id, in: db)?.record }
            return (created, read, viewed)
        }
        XCTAssertEqual(created.map(\.spec), specs)
        XCTAssertEqual(read, created)
        XCTAssertEqual(viewed, created)
    }
}

/// Set once by one thread, read by another.
private final class Started: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
