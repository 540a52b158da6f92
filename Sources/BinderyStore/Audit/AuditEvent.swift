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
        var buffer = ByteBuffer(capacity: 512)
        defer { buffer.deallocate() }
        writeCanonical(seq: seq, time: time, record: record, to: &buffer)
        return Data(bytes: buffer.base, count: buffer.count)
    }

    /// `canonicalBytes`' keys in its order, each with the `{` or `,` before it, and the column
    /// each value is stored in (`ChainWalk` writes the same bytes from the stored row).
    static let canonicalFields: [([UInt8], AuditColumn)] = ([
        ("{\"action\":", .action), (",\"actorIdentity\":", .actorIdentity), (",\"actorRole\":", .actorRole),
        (",\"after\":", .after), (",\"before\":", .before), (",\"httpStatus\":", .httpStatus), (",\"outcome\":", .outcome),
        (",\"remoteAddress\":", .remoteAddress), (",\"requestId\":", .requestID), (",\"resourceId\":", .resourceID),
        (",\"resourceType\":", .resourceType), (",\"seq\":", .seq), (",\"time\":", .time),
    ] as [(String, AuditColumn)]).map { (Array($0.0.utf8), $0.1) }

    /// Appends the canonical bytes to `out`, each string escaped by `JSONText.writeQuoted`.
    static func writeCanonical(seq: Int, time: String, record: AuditRecord, to out: inout ByteBuffer) {
        func string(_ value: String?) {
            guard var value else { return out.append(RowText.null) }
            value.withUTF8 { bytes in
                out.reserve(JSONText.maximumQuotedLength(bytes.count))
                out.count += JSONText.writeQuoted(bytes, to: out.base + out.count)
            }
        }
        for (key, column) in canonicalFields {
            out.append(key)
            switch column {
            case .action: string(record.action)
            case .actorIdentity: string(record.actor.identity)
            case .actorRole: string(record.actor.role)
            case .after: string(record.after)
            case .before: string(record.before)
            case .httpStatus: if let status = record.httpStatus { out.appendDecimal(Int64(status)) } else { out.append(RowText.null) }
            case .outcome: string(record.outcome.rawValue)
            case .remoteAddress: string(record.actor.remoteAddress)
            case .requestID: string(record.requestID)
            case .resourceID: string(record.resourceID)
            case .resourceType: string(record.resourceType)
            case .seq: out.appendDecimal(Int64(seq))
            case .time: string(time)
            case .previousHash, .hash: break
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The hash an event with these contents must carry.
    public static func computeHash(previousHash: Data, seq: Int, time: String, record: AuditRecord) -> Data {
        var buffer = ByteBuffer(capacity: 512)
        defer { buffer.deallocate() }
        previousHash.withUnsafeBytes { bytes in
            if let start = bytes.bindMemory(to: UInt8.self).baseAddress { buffer.append(start, bytes.count) }
        }
        writeCanonical(seq: seq, time: time, record: record, to: &buffer)
        return SHA256.digest(UnsafeRawBufferPointer(start: buffer.base, count: buffer.count))
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
