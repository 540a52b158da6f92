import GRDB

/// Tells a store that cannot work right now (disk full, I/O error, read-only or locked
/// database, a rolled-back batch) from a bad request or a bug, so callers can answer
/// "unavailable, try again" and recover when the cause goes away.
public enum StoreAvailability {
    /// Why the store is unavailable, when `error` says it is; nil for any other error.
    public static func unavailableReason(_ error: any Error) -> String? {
        if let store = error as? StoreError {
            switch store {
            case let .batchRolledBack(reason): return "the database rolled back the write: \(reason)"
            case .writerClosed: return "the database writer is shut down"
            case let .cannotOpen(path, reason): return "cannot open \(path): \(reason)"
            default: return nil
            }
        }
        guard let database = error as? DatabaseError else { return nil }
        switch database.resultCode {
        case .SQLITE_FULL: return "the disk holding the database is full"
        case .SQLITE_IOERR: return "I/O error on the database (\(database.extendedResultCode))"
        case .SQLITE_READONLY: return "the database is read-only"
        case .SQLITE_BUSY, .SQLITE_LOCKED: return "the database is busy"
        case .SQLITE_CANTOPEN: return "cannot open the database file"
        case .SQLITE_NOMEM: return "out of memory"
        default: return nil
        }
    }
}
