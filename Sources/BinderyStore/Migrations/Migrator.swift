import GRDB

/// Applies migrations in order, one transaction each, and records each with its SHA-256.
/// Refuses a database whose applied migrations were edited, or that has migrations
/// this binary does not know.
public struct Migrator: Sendable {
    /// The migrations this migrator knows, ordered by number.
    public let migrations: [Migration]

    /// A migrator over `migrations` (by default, the ones embedded in this binary).
    public init(migrations: [Migration]? = nil) throws {
        self.migrations = try migrations.map(Migration.ordered) ?? Migration.embedded()
    }

    /// What a migration run did.
    public struct Outcome: Sendable, Equatable {
        /// File names applied by this run, in order.
        public var applied: [String]
        /// File names that were already applied and verified unchanged.
        public var alreadyApplied: [String]
    }

    /// Checks the recorded migrations and applies the missing ones.
    @discardableResult
    public func migrate(_ writer: some DatabaseWriter) throws -> Outcome {
        try writer.writeWithoutTransaction { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS bindery_migrations (
                    version    INTEGER PRIMARY KEY,
                    name       TEXT NOT NULL,
                    sha256     TEXT NOT NULL,
                    applied_at TEXT NOT NULL
                )
                """)
        }
        let recorded = try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT version, name, sha256 FROM bindery_migrations ORDER BY version")
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        var outcome = Outcome(applied: [], alreadyApplied: [])
        for row in recorded {
            let version: Int = row["version"]
            let name: String = row["name"]
            let digest: String = row["sha256"]
            guard let migration = known[version] else {
                throw StoreError.databaseNewerThanBinary(version: version, name: name)
            }
            guard migration.sha256 == digest else {
                throw StoreError.editedMigration(file: migration.fileName, recordedSHA256: digest, embeddedSHA256: migration.sha256)
            }
            outcome.alreadyApplied.append(migration.fileName)
        }
        let appliedVersions = Set(recorded.map { $0["version"] as Int })
        for migration in migrations where !appliedVersions.contains(migration.version) {
            do {
                try writer.write { db in
                    try db.execute(sql: migration.sql)
                    try db.execute(
                        sql: "INSERT INTO bindery_migrations (version, name, sha256, applied_at) VALUES (?, ?, ?, ?)",
                        arguments: [migration.version, migration.name, migration.sha256, Timestamp.now()]
                    )
                }
            } catch {
                throw StoreError.migrationFailed(file: migration.fileName, reason: "\(error)")
            }
            outcome.applied.append(migration.fileName)
        }
        return outcome
    }
}
