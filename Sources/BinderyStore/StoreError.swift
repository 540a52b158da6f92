import Foundation

/// Everything the store can refuse or fail at, each case naming its cause.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// The data directory or database file could not be created or opened.
    case cannotOpen(path: String, reason: String)
    /// A migration file's name is not `NNNN_name.sql`, or two files share a number.
    case malformedMigrationSet(file: String, reason: String)
    /// An applied migration's SQL differs from the file this binary carries.
    case editedMigration(file: String, recordedSHA256: String, embeddedSHA256: String)
    /// The database has a migration this binary does not know: it was written by a newer Bindery.
    case databaseNewerThanBinary(version: Int, name: String)
    /// A migration failed to apply; its transaction was rolled back.
    case migrationFailed(file: String, reason: String)
    /// SQLite rolled back the whole group-commit transaction (disk full, I/O error…);
    /// this write was part of it and did not persist.
    case batchRolledBack(reason: String)
    /// A row the caller named does not exist.
    case notFound(resourceType: String, id: String)
    /// A uniqueness rule was violated (the field names which one).
    case conflict(resourceType: String, field: String, value: String)
    /// The writer was shut down before this write ran.
    case writerClosed
    /// A client-controlled count reached its limit.
    case limitReached(what: String, limit: Int)
    /// The audit signing key could not be read or made.
    case signingKey(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open database at \(path): \(reason)"
        case let .malformedMigrationSet(file, reason):
            return "migration \(file) is malformed: \(reason)"
        case let .editedMigration(file, recorded, embedded):
            return "migration \(file) was edited after it was applied (recorded sha256 \(recorded), this binary has \(embedded)); restore the original file and add a new migration instead"
        case let .databaseNewerThanBinary(version, name):
            return "database has migration \(String(format: "%04d", version))_\(name) which this binary does not know: it was written by a newer Bindery; refusing to start"
        case let .migrationFailed(file, reason):
            return "migration \(file) failed and was rolled back: \(reason)"
        case let .batchRolledBack(reason):
            return "the write's transaction was rolled back by SQLite: \(reason)"
        case let .notFound(type, id):
            return "\(type) \(id) not found"
        case let .conflict(type, field, value):
            return "\(type) with \(field) \(value) already exists"
        case .writerClosed:
            return "the store's writer is closed"
        case let .limitReached(what, limit):
            return "\(what) reached the limit of \(limit)"
        case let .signingKey(path, reason):
            return "audit signing key \(path): \(reason)"
        }
    }
}
