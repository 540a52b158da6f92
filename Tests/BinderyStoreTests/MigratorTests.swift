@testable import BinderyStore
import GRDB
import XCTest

final class MigratorTests: XCTestCase {
    func testFreshDatabaseAppliesEveryEmbeddedMigration() throws {
        let directory = try makeScratchDirectory(self)
        let store = try Store(dataDirectory: directory)
        let embedded = try Migration.embedded()
        XCTAssertFalse(embedded.isEmpty)
        let recorded = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT version, sha256 FROM bindery_migrations ORDER BY version")
        }
        XCTAssertEqual(recorded.map { $0["version"] as Int }, embedded.map(\.version))
        XCTAssertEqual(recorded.map { $0["sha256"] as String }, embedded.map(\.sha256))
        let tables = try store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        for table in ["vms", "vm_memory_regions", "devices", "bindings", "host_pasids", "operations",
                      "idempotency_keys", "audit_events"] {
            XCTAssertTrue(tables.contains(table), "missing table \(table)")
        }
    }

    func testPragmasGiveDurability() throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        try store.pool.write { db in
            XCTAssertEqual(try String.fetchOne(db, sql: "PRAGMA journal_mode"), "wal")
            XCTAssertEqual(try Int.fetchOne(db, sql: "PRAGMA synchronous"), 2, "synchronous must be FULL (2)")
            XCTAssertEqual(try Int.fetchOne(db, sql: "PRAGMA foreign_keys"), 1)
        }
    }

    /// Each queued write runs in a savepoint, whose statement journal holds the pages it
    /// changes. SQLite spills it to a file in /var/tmp past 64 KiB by default and then writes
    /// every page there first; `Store.configureSQLite` keeps 128 KiB in memory, and past that
    /// a bulk write still spills (and succeeds), so its memory stays bounded. The setting
    /// applies only before SQLite's first connection and other tests open theirs first, so
    /// this runs in a fresh process of the test binary.
    func testAWriteKeepsItsStatementJournalInMemoryUpToItsBound() async throws {
        guard ProcessInfo.processInfo.environment["BINDERY_FRESH_TEST_PROCESS"] != nil else {
            return try runInFreshProcess("BinderyStoreTests.MigratorTests/testAWriteKeepsItsStatementJournalInMemoryUpToItsBound")
        }
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        XCTAssertTrue(Store.configureSQLite(), "the setting took before SQLite's first connection")
        let kilobyte = String(repeating: "x", count: 1024)
        try await store.write { db in
            try db.execute(sql: "CREATE TABLE scratch (text TEXT NOT NULL)")
            for _ in 0..<8_192 { try db.execute(sql: "INSERT INTO scratch (text) VALUES (?)", arguments: [kilobyte]) }
        }
        // About 80 KiB of existing pages rewritten inside one write's savepoint: in memory.
        let small = try await store.write { db -> [String] in
            try db.execute(sql: "UPDATE scratch SET text = upper(text) WHERE rowid <= 60")
            return Self.openTemporaryFiles()
        }
        XCTAssertEqual(small, [], "a write's statement journal went to disk")
        // About 8 MiB: past the bound the journal spills rather than growing in memory, and the write succeeds.
        let bulk = try await store.write { db -> [String] in
            try db.execute(sql: "UPDATE scratch SET text = text || 'y'")
            return Self.openTemporaryFiles()
        }
        XCTAssertFalse(bulk.isEmpty, "a bulk write's statement journal stays bounded in memory")
        let rewritten = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM scratch WHERE text LIKE '%y'") }
        XCTAssertEqual(rewritten, 8_192)
    }

    /// SQLite's temporary files this process holds open (`etilqs_…`, unlinked once open).
    private static func openTemporaryFiles() -> [String] {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
            .filter { $0.contains("etilqs_") }
    }

    /// Runs `test` alone in a new process of this test binary and fails unless it passes there.
    private func runInFreshProcess(_ test: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = [test]
        process.environment = ProcessInfo.processInfo.environment.merging(["BINDERY_FRESH_TEST_PROCESS": "1"]) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("Executed 1 test, with 0 failures"), text)
    }

    func testRerunIsANoOp() throws {
        let directory = try makeScratchDirectory(self)
        _ = try Store(dataDirectory: directory)
        let store = try Store(dataDirectory: directory)
        let outcome = try Migrator().migrate(store.pool)
        XCTAssertEqual(outcome.applied, [])
        XCTAssertEqual(outcome.alreadyApplied, try Migration.embedded().map(\.fileName))
    }

    func testEditedAppliedMigrationIsRefusedNamingTheFile() throws {
        let path = try makeScratchDirectory(self) + "/db.sqlite"
        let original = Migration(version: 1, name: "first", sql: "CREATE TABLE a (x INTEGER);")
        _ = try Store(path: path, migrator: Migrator(migrations: [original]))
        let edited = Migration(version: 1, name: "first", sql: "CREATE TABLE a (x INTEGER, y TEXT);")
        XCTAssertThrowsError(try Store(path: path, migrator: Migrator(migrations: [edited]))) { error in
            guard case let StoreError.editedMigration(file, recorded, embedded) = error else {
                return XCTFail("expected editedMigration, got \(error)")
            }
            XCTAssertEqual(file, "0001_first.sql")
            XCTAssertEqual(recorded, original.sha256)
            XCTAssertEqual(embedded, edited.sha256)
            XCTAssertTrue("\(error)".contains("0001_first.sql"))
        }
    }

    func testDatabaseFromANewerBinaryIsRefused() throws {
        let path = try makeScratchDirectory(self) + "/db.sqlite"
        let first = Migration(version: 1, name: "first", sql: "CREATE TABLE a (x INTEGER);")
        let second = Migration(version: 2, name: "second", sql: "CREATE TABLE b (x INTEGER);")
        _ = try Store(path: path, migrator: Migrator(migrations: [first, second]))
        XCTAssertThrowsError(try Store(path: path, migrator: Migrator(migrations: [first]))) { error in
            XCTAssertEqual(error as? StoreError, .databaseNewerThanBinary(version: 2, name: "second"))
            XCTAssertTrue("\(error)".contains("0002_second"))
        }
    }

    func testFailingMigrationRollsBackAndNamesTheFile() throws {
        let path = try makeScratchDirectory(self) + "/db.sqlite"
        let broken = Migration(version: 1, name: "broken", sql: "CREATE TABLE a (x INTEGER); CREATE TABLE a (y INTEGER);")
        XCTAssertThrowsError(try Store(path: path, migrator: Migrator(migrations: [broken]))) { error in
            guard case let StoreError.migrationFailed(file, _) = error else { return XCTFail("got \(error)") }
            XCTAssertEqual(file, "0001_broken.sql")
        }
        let queue = try DatabaseQueue(path: path)
        let tables = try queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        XCTAssertFalse(tables.contains("a"), "the failed migration's first statement must be rolled back")
    }

    func testMigrationFileNamesAreParsedStrictly() throws {
        XCTAssertEqual(try Migration(fileName: "0007_add_things.sql", sql: "").version, 7)
        XCTAssertEqual(try Migration(fileName: "0007_add_things.sql", sql: "").name, "add_things")
        for bad in ["add.sql", "0001.sql", "x001_a.sql", "0001_.sql", "0001_a.txt", "0000_zero.sql"] {
            XCTAssertThrowsError(try Migration(fileName: bad, sql: ""), bad)
        }
        let a = Migration(version: 1, name: "a", sql: "")
        let b = Migration(version: 1, name: "b", sql: "")
        XCTAssertThrowsError(try Migration.ordered([a, b]))
    }
}

/// Local users read nothing: what the store creates is its owner's alone.
final class StorePermissionTests: XCTestCase {
    func testACreatedDataDirectoryIs0700AndTheDatabaseFilesAre0600() async throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("perm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let directory = parent + "/data"
        let store = try Store(dataDirectory: directory)
        try await store.write { db in try db.execute(sql: "CREATE TABLE IF NOT EXISTS probe (x)") }
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }
        XCTAssertEqual(try mode(directory), 0o700)
        for file in [Store.fileName, Store.fileName + "-wal", Store.fileName + "-shm"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/" + file), file)
            XCTAssertEqual(try mode(directory + "/" + file), 0o600, file)
        }
    }

    func testAnExistingWorldReadableDatabaseIsTightenedOnOpen() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("perm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try Store(dataDirectory: directory)
        chmod(directory + "/" + Store.fileName, 0o644)
        _ = try Store(dataDirectory: directory)
        let mode = (try FileManager.default.attributesOfItem(atPath: directory + "/" + Store.fileName)[.posixPermissions] as? NSNumber)?.intValue
        XCTAssertEqual(mode, 0o600)
    }
}
