import Foundation
import GRDB

/// Idempotency-Key records: the first answer to a POST, replayed for the same key and body.
public enum IdempotencyRepository {
    /// What a key says about a new request.
    public enum Claim: Sendable, Equatable {
        /// New key: go ahead (it is now in flight).
        case proceed
        /// Same key and body, already answered: replay this.
        case replay(status: Int, headers: [String: String], body: [UInt8])
        /// Same key, different body.
        case mismatch
        /// Same key, the first request is still running.
        case inFlight
    }

    /// How long keys live.
    public static let lifetime: TimeInterval = 24 * 3600

    /// Claims `key` for `identity` with a request whose body hashes to `digest`.
    public static func claim(identity: String, key: String, digest: Data, in db: Database) throws -> Claim {
        let now = Date()
        try db.execute(sql: "DELETE FROM idempotency_keys WHERE expires_at < ?", arguments: [Timestamp.format(now)])
        if let row = try Row.fetchOne(db, sql: "SELECT * FROM idempotency_keys WHERE identity = ? AND key = ?", arguments: [identity, key]) {
            guard (row["request_sha256"] as Data) == digest else { return .mismatch }
            guard (row["state"] as String) == "completed" else { return .inFlight }
            let headers = (try? JSONDecoder().decode([String: String].self, from: Data((row["response_headers"] as String? ?? "{}").utf8))) ?? [:]
            return .replay(status: row["status"], headers: headers, body: [UInt8](row["response_body"] as Data? ?? Data()))
        }
        try db.execute(sql: """
            INSERT INTO idempotency_keys (identity, key, request_sha256, state, created_at, expires_at) VALUES (?, ?, ?, 'in-flight', ?, ?)
            """, arguments: [identity, key, digest, Timestamp.format(now), Timestamp.format(now.addingTimeInterval(lifetime))])
        return .proceed
    }

    /// Records the answer to replay.
    public static func complete(identity: String, key: String, status: Int, headers: [String: String], body: [UInt8], in db: Database) throws {
        try db.execute(sql: """
            UPDATE idempotency_keys SET state = 'completed', status = ?, response_headers = ?, response_body = ? WHERE identity = ? AND key = ?
            """, arguments: [status, JSONText.object(headers), Data(body), identity, key])
    }

    /// Forgets every key still in flight. Called once at start, before serving: only this
    /// process writes the database, so a key in flight then belonged to a process that died
    /// mid-request, and its retry must run again instead of getting 409 for a day.
    @discardableResult
    public static func reclaimAbandoned(in db: Database) throws -> Int {
        try db.execute(sql: "DELETE FROM idempotency_keys WHERE state = 'in-flight'")
        return db.changesCount
    }

    /// Forgets a key whose request failed on our side (so a retry runs again).
    public static func release(identity: String, key: String, in db: Database) throws {
        try db.execute(sql: "DELETE FROM idempotency_keys WHERE identity = ? AND key = ?", arguments: [identity, key])
    }
}
