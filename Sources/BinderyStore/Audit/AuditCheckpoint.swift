import Foundation
import GRDB

/// A signed statement of the chain: at `seq`, its hash was `headHash`, at `time`, signed by the
/// key `publicKey`. A chain that lost events past a checkpoint, or was rewritten before one,
/// no longer matches it.
public struct AuditCheckpoint: Sendable, Equatable {
    /// The seq the checkpoint covers (everything up to it).
    public var seq: Int
    /// The chain's hash at `seq`.
    public var headHash: Data
    /// When it was signed (RFC 3339 UTC).
    public var time: String
    /// The Ed25519 public key that signed it.
    public var publicKey: Data
    /// The Ed25519 signature of `message`.
    public var signature: Data

    /// The bytes signed: a versioned, line-oriented text anyone can rebuild from the fields.
    public var message: [UInt8] {
        Array("bindery-audit-checkpoint-v1\nseq=\(seq)\nhead=\(headHash.hexString)\ntime=\(time)\n".utf8)
    }

    /// Whether the signature is `publicKey`'s over `message`.
    public var isSignatureValid: Bool {
        AuditSigningKey.isValid(signature: [UInt8](signature), of: message, by: [UInt8](publicKey))
    }
}

/// Making and reading checkpoints.
public enum AuditCheckpoints {
    /// Signs the chain's head now, inside the caller's transaction. Returns the newest checkpoint
    /// without signing again when the head has not moved, and nil for an empty chain.
    @discardableResult
    public static func create(with key: AuditSigningKey, in db: Database, at time: String = Timestamp.now()) throws -> AuditCheckpoint? {
        guard let head = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")) else {
            return nil
        }
        let seq: Int = head["seq"]
        if let latest = try latest(in: db), latest.seq == seq { return latest }
        var checkpoint = AuditCheckpoint(seq: seq, headHash: head["hash"], time: time, publicKey: Data(key.publicKey), signature: Data())
        checkpoint.signature = Data(key.sign(checkpoint.message))
        try db.execute(sql: "INSERT INTO audit_checkpoints (seq, head_hash, time, public_key, signature) VALUES (?, ?, ?, ?, ?)",
                       arguments: [checkpoint.seq, checkpoint.headHash, checkpoint.time, checkpoint.publicKey, checkpoint.signature])
        return checkpoint
    }

    /// The newest checkpoint.
    public static func latest(in db: Database) throws -> AuditCheckpoint? {
        try Row.fetchOne(db, sql: "SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").map(AuditCheckpoint.init(row:))
    }

    /// Checkpoints after `after`, oldest first, at most `limit`.
    public static func list(after: Int, limit: Int, in db: Database) throws -> [AuditCheckpoint] {
        try Row.fetchAll(db, sql: "SELECT * FROM audit_checkpoints WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [after, limit])
            .map(AuditCheckpoint.init(row:))
    }

    /// How far the head is past the newest checkpoint: events not yet signed, and the seconds
    /// since the newest checkpoint (nil: none yet).
    public static func lag(in db: Database, now: Date = Date()) throws -> (events: Int, seconds: Double?) {
        let head = try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM audit_events") ?? 0
        guard let latest = try latest(in: db) else { return (head, nil) }
        return (head - latest.seq, Timestamp.parse(latest.time).map { now.timeIntervalSince($0) })
    }
}

extension AuditCheckpoint {
    init(row: Row) {
        self.init(seq: row["seq"], headHash: row["head_hash"], time: row["time"], publicKey: row["public_key"], signature: row["signature"])
    }
}
