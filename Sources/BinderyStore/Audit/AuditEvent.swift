import Foundation
import GRDB

/// Who did something: the caller's certificate identity and role, or the reconciler.
public struct AuditActor: Sendable, Equatable, Codable {
    /// The certificate identity (URI SAN, DNS SAN or CN), or `reconciler` / `cli`.
    public var identity: String
    /// The role the identity held, if any.
    public var role: String?
    /// The peer address, for network callers.
    public var remoteAddress: String?

    /// An actor from its parts.
    public init(identity: String, role: String? = nil, remoteAddress: String? = nil) {
        self.identity = identity
        self.role = role
        self.remoteAddress = remoteAddress
    }

    /// The reconciler, acting on its own.
    public static let reconciler = AuditActor(identity: "reconciler", role: nil, remoteAddress: nil)
}

/// How an audited action ended.
public enum AuditOutcome: String, Sendable, Codable, CaseIterable {
    /// The action took effect.
    case success
    /// The caller was not allowed to do it.
    case denied
    /// It was allowed but failed.
    case failed
}

/// What to record, before the chain gives it a `seq` and a hash.
public struct AuditRecord: Sendable, Equatable {
    /// Who acted.
    public var actor: AuditActor
    /// The request's `X-Request-Id`, when there was one.
    public var requestID: String?
    /// The verb, e.g. `vm.create`, `binding.bind`.
    public var action: String
    /// The resource type, e.g. `vm`, `device`, `binding`.
    public var resourceType: String
    /// The resource's id, when it has one.
    public var resourceID: String?
    /// How it ended.
    public var outcome: AuditOutcome
    /// The HTTP status answered, for API calls.
    public var httpStatus: Int?
    /// The resource as JSON before the change.
    public var before: String?
    /// The resource as JSON after the change.
    public var after: String?

    /// A record of a known action.
    public init(actor: AuditActor, requestID: String? = nil, action: AuditAction, resourceType: String,
                resourceID: String? = nil, outcome: AuditOutcome, httpStatus: Int? = nil,
                before: String? = nil, after: String? = nil) {
        self.init(actor: actor, requestID: requestID, action: action.rawValue, resourceType: resourceType, resourceID: resourceID,
                  outcome: outcome, httpStatus: httpStatus, before: before, after: after)
    }

    /// A record from its parts.
    public init(actor: AuditActor, requestID: String? = nil, action: String, resourceType: String,
                resourceID: String? = nil, outcome: AuditOutcome, httpStatus: Int? = nil,
                before: String? = nil, after: String? = nil) {
        self.actor = actor
        self.requestID = requestID
        self.action = action
        self.resourceType = resourceType
        self.resourceID = resourceID
        self.outcome = outcome
        self.httpStatus = httpStatus
        self.before = before
        self.after = after
    }
}

/// An event in the chain: a record with its place (`seq`), time and hashes.
public struct AuditEvent: Sendable, Equatable {
    /// Position in the chain, from 1 with no gaps.
    public var seq: Int
    /// When it was recorded (RFC 3339 UTC).
    public var time: String
    /// What was recorded.
    public var record: AuditRecord
    /// The previous event's hash (32 zero bytes for the first event).
    public var previousHash: Data
    /// SHA-256 over `previousHash` and this event's canonical bytes.
    public var hash: Data

    /// The bytes the hash covers after `previousHash`: a JSON object with keys in a fixed
    /// (sorted) order and no insignificant white space. Changing this breaks every chain.
    public static func canonicalBytes(seq: Int, time: String, record: AuditRecord) -> Data {
        let fields: [(String, String)] = [
            ("action", JSONText.string(record.action)),
            ("actorIdentity", JSONText.string(record.actor.identity)),
            ("actorRole", JSONText.optionalString(record.actor.role)),
            ("after", JSONText.optionalString(record.after)),
            ("before", JSONText.optionalString(record.before)),
            ("httpStatus", JSONText.optionalInteger(record.httpStatus)),
            ("outcome", JSONText.string(record.outcome.rawValue)),
            ("remoteAddress", JSONText.optionalString(record.actor.remoteAddress)),
            ("requestId", JSONText.optionalString(record.requestID)),
            ("resourceId", JSONText.optionalString(record.resourceID)),
            ("resourceType", JSONText.string(record.resourceType)),
            ("seq", String(seq)),
            ("time", JSONText.string(time)),
        ]
        return Data(("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}").utf8)
    }

    /// The hash an event with these contents must carry.
    public static func computeHash(previousHash: Data, seq: Int, time: String, record: AuditRecord) -> Data {
        var bytes = previousHash
        bytes.append(canonicalBytes(seq: seq, time: time, record: record))
        return SHA256.digest(bytes)
    }
}

extension AuditEvent {
    /// Decodes an `audit_events` row.
    init(row: Row) {
        let outcomeText: String = row["outcome"]
        self.init(
            seq: row["seq"],
            time: row["time"],
            record: AuditRecord(
                actor: AuditActor(identity: row["actor_identity"], role: row["actor_role"], remoteAddress: row["remote_address"]),
                requestID: row["request_id"],
                action: row["action"],
                resourceType: row["resource_type"],
                resourceID: row["resource_id"],
                outcome: AuditOutcome(rawValue: outcomeText) ?? .failed,
                httpStatus: row["http_status"],
                before: row["before_json"],
                after: row["after_json"]
            ),
            previousHash: row["prev_hash"],
            hash: row["hash"]
        )
    }
}
