/// One schema migration: `Migrations/NNNN_name.sql`, identified by its number.
public struct Migration: Sendable, Equatable {
    /// The number from the file name; migrations apply in ascending order.
    public let version: Int
    /// The part of the file name after the number, without `.sql`.
    public let name: String
    /// The SQL, executed in one transaction.
    public let sql: String

    /// The file name this migration came from.
    public var fileName: String { "\(versionLabel)_\(name).sql" }

    /// The zero-padded number, as in the file name.
    var versionLabel: String {
        let digits = String(version)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// SHA-256 of the SQL, recorded when applied and checked on every start.
    public var sha256: String { SHA256.hex(of: sql) }

    /// A migration from its number, name and SQL.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// Parses `NNNN_name.sql` into a migration.
    public init(fileName: String, sql: String) throws {
        guard fileName.hasSuffix(".sql"), let underscore = fileName.firstIndex(of: "_") else {
            throw StoreError.malformedMigrationSet(file: fileName, reason: "expected NNNN_name.sql")
        }
        let number = fileName[..<underscore]
        guard !number.isEmpty, number.allSatisfy(\.isASCII), let version = Int(number), version > 0 else {
            throw StoreError.malformedMigrationSet(file: fileName, reason: "expected a positive number before the underscore")
        }
        let name = fileName[fileName.index(after: underscore)...].dropLast(4)
        guard !name.isEmpty else {
            throw StoreError.malformedMigrationSet(file: fileName, reason: "expected a name after the underscore")
        }
        self.init(version: version, name: String(name), sql: sql)
    }

    /// The migrations embedded in this binary at build time, from `Migrations/*.sql`.
    public static func embedded() throws -> [Migration] {
        try ordered(embeddedMigrationFiles.map { try Migration(fileName: $0.name, sql: $0.text) })
    }

    /// `migrations` sorted by number; two with one number are refused.
    public static func ordered(_ migrations: [Migration]) throws -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw StoreError.malformedMigrationSet(file: next.fileName, reason: "number also used by \(previous.fileName)")
        }
        return sorted
    }
}
