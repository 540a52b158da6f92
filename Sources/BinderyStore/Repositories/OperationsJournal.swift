import GRDB

/// The reconciler's journal: an intent row before each kernel action, its result after, so a
/// restart can tell which actions were in flight when the process died.
public enum OperationsJournal {
    /// Records the intent to act on a resource; returns the row id.
    public static func begin(resourceType: String, resourceID: String, action: String, generation: Int,
                             detail: String = "{}", in db: Database) throws -> Int64 {
        try db.cachedStatement(sql: """
            INSERT INTO operations (resource_type, resource_id, action, generation, state, detail, started_at)
            VALUES (?, ?, ?, ?, 'intent', ?, ?)
            """).execute(arguments: [resourceType, resourceID, action, generation, detail, Timestamp.now()])
        return db.lastInsertedRowID
    }

    /// Records how an intent ended.
    public static func finish(_ id: Int64, succeeded: Bool, kernelCall: String? = nil, errno: String? = nil,
                              in db: Database) throws {
        try db.cachedStatement(sql: """
            UPDATE operations SET state = ?, kernel_call = ?, errno_name = ?, finished_at = ? WHERE id = ?
            """).execute(arguments: [succeeded ? "succeeded" : "failed", kernelCall, errno, Timestamp.now(), id])
    }

    /// Intents that never got a result (the process died in between).
    public static func openIntents(in db: Database) throws -> [(id: Int64, resourceType: String, resourceID: String, action: String)] {
        try Row.fetchAll(db, sql: "SELECT id, resource_type, resource_id, action FROM operations WHERE state = 'intent' ORDER BY id")
            .map { ($0["id"], $0["resource_type"], $0["resource_id"], $0["action"]) }
    }

    /// Closes every open intent as failed with `reason` (used on restart).
    @discardableResult
    public static func abandonOpenIntents(reason: String, in db: Database) throws -> Int {
        try db.execute(sql: """
            UPDATE operations SET state = 'failed', detail = json_set(detail, '$.abandoned', ?), finished_at = ?
            WHERE state = 'intent'
            """, arguments: [reason, Timestamp.now()])
        return db.changesCount
    }
}
