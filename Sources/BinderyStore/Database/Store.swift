import Foundation
import GRDB

/// Bindery's SQLite database: WAL, `synchronous=FULL`, foreign keys, a busy timeout,
/// pooled readers and one group-committing writer. Opening it applies migrations.
public final class Store: Sendable {
    /// The file name of the database inside the data directory.
    public static let fileName = "bindery.sqlite"

    /// The database file.
    public let path: String
    /// The pool: concurrent readers, one serialized writer connection.
    public let pool: DatabasePool
    /// The group-commit writer every write goes through.
    public let writer: GroupCommitWriter

    /// Opens (creating if needed) the database in `dataDirectory` and migrates it.
    /// - Parameter maximumBatchSize: 1 turns group commit off (for comparisons).
    public convenience init(dataDirectory: String, maximumBatchSize: Int = 512, migrator: Migrator? = nil) throws {
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw StoreError.cannotOpen(path: dataDirectory, reason: "mkdir: \(error.localizedDescription)")
        }
        try self.init(path: (dataDirectory as NSString).appendingPathComponent(Store.fileName),
                      maximumBatchSize: maximumBatchSize, migrator: migrator)
    }

    /// Opens (creating if needed) the database file at `path` and migrates it.
    public init(path: String, maximumBatchSize: Int = 512, migrator: Migrator? = nil) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.label = "bindery"
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB's WAL setup leaves the writer at synchronous=NORMAL, which can lose the last
            // commits on power loss. FULL fsyncs the WAL on every commit: a 2xx stays true.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        } catch {
            throw StoreError.cannotOpen(path: path, reason: "\(error)")
        }
        self.path = path
        writer = GroupCommitWriter(database: pool, maximumBatchSize: maximumBatchSize)
        try (migrator ?? Migrator()).migrate(pool)
    }

    /// Runs `body` in a durable group-committed transaction (see `GroupCommitWriter`).
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await writer.write(body)
    }

    /// Runs `body` on a reader connection, in a consistent snapshot.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }
}
