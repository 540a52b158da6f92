import Foundation
import GRDB

/// The append-only, hash-chained audit history.
public enum AuditChain {
    /// The `prev_hash` of the first event.
    public static let genesisHash = Data(count: 32)

    /// Appends `record` as the next event, inside the caller's transaction, so a change
    /// and its audit event commit (or roll back) together.
    @discardableResult
    public static func append(_ record: AuditRecord, in db: Database, at time: String = Timestamp.now()) throws -> AuditEvent {
        let head = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"))
        let seq = (head?["seq"] as Int? ?? 0) + 1
        let previousHash: Data = head?["hash"] ?? genesisHash
        let hash = AuditEvent.computeHash(previousHash: previousHash, seq: seq, time: time, record: record)
        try db.cachedStatement(sql: """
            INSERT INTO audit_events (seq, time, actor_identity, actor_role, remote_address, request_id,
                action, resource_type, resource_id, outcome, http_status, before_json, after_json, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [seq, time, record.actor.identity, record.actor.role, record.actor.remoteAddress, record.requestID,
                        record.action, record.resourceType, record.resourceID, record.outcome.rawValue, record.httpStatus,
                        record.before, record.after, previousHash, hash]
        )
        return AuditEvent(seq: seq, time: time, record: record, previousHash: previousHash, hash: hash)
    }

    /// The result of walking the chain.
    public struct Verification: Sendable, Equatable {
        /// True when every event links to its predecessor and its hash matches its contents.
        public var isValid: Bool
        /// Events checked (all of them when valid; those before the break otherwise).
        public var events: Int
        /// The last verified event's hash, hex (the genesis hash for an empty chain).
        public var head: String
        /// The first event that does not verify.
        public var firstBrokenSeq: Int?
        /// Why it does not verify.
        public var reason: String?
        /// Signed checkpoints found to match the chain.
        public var checkpoints = 0

        /// A verification's outcome.
        public init(isValid: Bool, events: Int, head: String, firstBrokenSeq: Int?, reason: String?, checkpoints: Int = 0) {
            self.isValid = isValid
            self.events = events
            self.head = head
            self.firstBrokenSeq = firstBrokenSeq
            self.reason = reason
            self.checkpoints = checkpoints
        }
    }

    /// Walks the chain in `seq` order, recomputing every hash (`ChainWalk`), at flat memory, and
    /// checks every signed checkpoint against it; with `trustedKey`, only that key may sign.
    public static func verify(in db: Database, trustedKey: [UInt8]? = nil) throws -> Verification {
        try ChainWalk.verify(in: db, trustedKey: trustedKey)
    }

    /// The same walk in two halves on two of `pool`'s connections at once (about half the time
    /// on two cores) once the chain is longer than `splitAbove`; the answer is `verify(in:)`'s.
    public static func verify(reading pool: DatabasePool, trustedKey: [UInt8]? = nil, splitAbove: Int = 20_000) throws -> Verification {
        try ChainWalk.verifyInParallel(pool: pool, trustedKey: trustedKey, splitAbove: splitAbove)
    }

    /// The event at `seq`, if any.
    public static func event(seq: Int, in db: Database) throws -> AuditEvent? {
        try Row.fetchOne(db, sql: "SELECT * FROM audit_events WHERE seq = ?", arguments: [seq]).map(AuditEvent.init(row:))
    }

    /// A selection of the history: filters ANDed together, `seq` ascending after `after`.
    public struct Query: Sendable {
        /// Exact actor identity.
        public var actor: String?
        /// Exact action (`binding.bind`).
        public var action: String?
        /// Exact resource type.
        public var resourceType: String?
        /// Exact resource id.
        public var resourceID: String?
        /// Exact outcome.
        public var outcome: AuditOutcome?
        /// Outcomes left out (the change feed leaves out denials).
        public var excludedOutcomes: [AuditOutcome] = []
        /// Events at or after this time (RFC 3339).
        public var since: String?
        /// Events before this time (RFC 3339).
        public var until: String?
        /// Events with `seq` greater than this.
        public var after = 0
        /// At most this many.
        public var limit = 100

        /// Everything, first page.
        public init() {}
    }

    /// The events `query` selects.
    public static func events(_ query: Query, in db: Database) throws -> [AuditEvent] {
        let (sql, arguments) = selection(query)
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map(AuditEvent.init(row:))
    }

    /// The SQL `events` runs for `query`, and its arguments.
    static func selection(_ query: Query, columns: String = "*") -> (sql: String, arguments: StatementArguments) {
        var clauses = ["seq > ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [query.after]
        func add(_ clause: String, _ value: (any DatabaseValueConvertible)?) {
            guard let value else { return }
            clauses.append(clause)
            arguments.append(value)
        }
        add("actor_identity = ?", query.actor)
        add("action = ?", query.action)
        add("resource_type = ?", query.resourceType)
        add("resource_id = ?", query.resourceID)
        add("outcome = ?", query.outcome?.rawValue)
        for excluded in query.excludedOutcomes { add("outcome <> ?", excluded.rawValue) }
        add("time >= ?", query.since)
        add("time < ?", query.until)
        arguments.append(query.limit)
        return ("SELECT \(columns) FROM audit_events WHERE \(clauses.joined(separator: " AND ")) ORDER BY seq LIMIT ?",
                StatementArguments(arguments)!)
    }

    /// The highest `seq` (0 for an empty chain).
    public static func headSeq(in db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM audit_events") ?? 0
    }
}
