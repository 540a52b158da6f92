import Foundation
import GRDB

/// One-time attach tokens and the VMM holding each VM's devices.
public enum AttachmentRepository {
    /// Tokens not yet spent or expired that one VM may have at a time.
    public static let outstandingLimit = 16

    /// A token just issued: the secret (shown once) and when it stops working.
    public struct Issued: Sendable, Equatable {
        /// The secret, 64 hex digits.
        public var token: String
        /// When it expires.
        public var expiresAt: Date
    }

    /// Why a token opened nothing.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// No such token.
        case unknown
        /// It was spent before.
        case used
        /// It expired.
        case expired
        /// It belongs to another VM than the one asked for.
        case otherVM
        /// The VM is gone or going.
        case vmGone
        /// Another live VMM holds the VM's devices.
        case held(pid: Int32)

        /// What the VMM is told.
        public var description: String {
            switch self {
            case .unknown: "unknown attach token"
            case .used: "the attach token was already used"
            case .expired: "the attach token expired"
            case .otherVM: "the attach token is for another VM"
            case .vmGone: "the VM is deleted or being deleted"
            case let .held(pid): "another VMM (pid \(pid)) holds this VM's devices"
            }
        }
    }

    /// The VMM holding a VM's devices.
    public struct Holder: Sendable, Equatable {
        /// Its process id, user and group, from the socket's peer credentials.
        public var pid: Int32, uid: UInt32, gid: UInt32
        /// Who issued the token it used.
        public var issuer: String
        /// Since when.
        public var since: String
    }

    /// Issues a token for `vmID` valid for `lifetime` seconds, audited as `attachment.issue`.
    public static func issue(vmID: String, lifetime: TimeInterval, actor: AuditActor, requestID: String? = nil,
                             in db: Database) throws -> Issued {
        guard try Row.fetchOne(db, sql: "SELECT 1 FROM vms WHERE id = ? AND deleted_at IS NULL AND deletion_requested_at IS NULL", arguments: [vmID]) != nil else {
            throw StoreError.notFound(resourceType: "vm", id: vmID)
        }
        let now = Date()
        try db.execute(sql: "DELETE FROM attach_tokens WHERE expires_at < ? AND used_at IS NULL", arguments: [Timestamp.format(now)])
        let outstanding = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attach_tokens WHERE vm_id = ? AND used_at IS NULL", arguments: [vmID]) ?? 0
        guard outstanding < outstandingLimit else {
            throw StoreError.limitReached(what: "attach tokens outstanding for \(vmID)", limit: outstandingLimit)
        }
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        let expiresAt = now.addingTimeInterval(lifetime)
        try db.execute(sql: """
            INSERT INTO attach_tokens (token_sha256, vm_id, issuer, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
            """, arguments: [SHA256.digest(Data(secret.utf8)), vmID, actor.identity, Timestamp.format(now), Timestamp.format(expiresAt)])
        try AuditChain.append(AuditRecord(actor: actor, requestID: requestID, action: .attachmentIssue, resourceType: "vm", resourceID: vmID,
                                          outcome: .success, after: JSONText.object([("expiresAt", JSONText.string(Timestamp.format(expiresAt)))])),
                              in: db)
        return Issued(token: secret, expiresAt: expiresAt)
    }

    /// Why `token` would not open `vmID`, without spending it; nil when it would.
    public static func check(token: String, vmID: String, in db: Database) throws -> Refusal? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM attach_tokens WHERE token_sha256 = ?",
                                         arguments: [SHA256.digest(Data(token.utf8))]) else { return .unknown }
        guard (row["vm_id"] as String) == vmID else { return .otherVM }
        guard (row["used_at"] as String?) == nil else { return .used }
        guard let expires = Timestamp.parse(row["expires_at"]), expires > Date() else { return .expired }
        return nil
    }

    /// Spends `token` for `vmID` on behalf of the peer, making it the VM's holder (audited
    /// `vmm.attach`). A previous holder that `isAlive` says is gone is replaced.
    public static func redeem(token: String, vmID: String, pid: Int32, uid: UInt32, gid: UInt32,
                              isAlive: (Int32) -> Bool, in db: Database) throws -> Result<Holder, Refusal> {
        let now = Date()
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM attach_tokens WHERE token_sha256 = ?",
                                         arguments: [SHA256.digest(Data(token.utf8))]) else { return .failure(.unknown) }
        guard (row["vm_id"] as String) == vmID else { return .failure(.otherVM) }
        guard (row["used_at"] as String?) == nil else { return .failure(.used) }
        guard let expires = Timestamp.parse(row["expires_at"]), expires > now else { return .failure(.expired) }
        guard try Row.fetchOne(db, sql: "SELECT 1 FROM vms WHERE id = ? AND deleted_at IS NULL AND deletion_requested_at IS NULL", arguments: [vmID]) != nil else {
            return .failure(.vmGone)
        }
        if let current = try holder(of: vmID, in: db) {
            guard !isAlive(current.pid) else { return .failure(.held(pid: current.pid)) }
            try release(vmID: vmID, pid: current.pid, reason: "process \(current.pid) is gone", in: db)
        }
        let issuer: String = row["issuer"]
        try db.execute(sql: "UPDATE attach_tokens SET used_at = ?, used_by_pid = ?, used_by_uid = ? WHERE token_sha256 = ?",
                       arguments: [Timestamp.format(now), pid, uid, row["token_sha256"] as Data])
        let holder = Holder(pid: pid, uid: uid, gid: gid, issuer: issuer, since: Timestamp.format(now))
        try db.execute(sql: "INSERT INTO vmm_holders (vm_id, pid, uid, gid, issuer, since) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [vmID, pid, uid, gid, issuer, holder.since])
        try AuditChain.append(AuditRecord(actor: vmmActor(pid: pid, uid: uid), action: .vmmAttach, resourceType: "vm", resourceID: vmID,
                                          outcome: .success, after: holderJSON(holder)), in: db)
        return .success(holder)
    }

    /// Records a refused attach (audited `vmm.attach`, denied), naming the peer and why.
    public static func recordRefusal(_ refusal: Refusal, vmID: String?, pid: Int32, uid: UInt32, in db: Database) throws {
        try AuditChain.append(AuditRecord(actor: vmmActor(pid: pid, uid: uid), action: .vmmAttach, resourceType: "vm", resourceID: vmID.map { String($0.prefix(128)) },
                                          outcome: .denied, after: JSONText.object([("reason", JSONText.string(refusal.description))])), in: db)
    }

    /// Forgets the VM's holder when it is `pid` (audited `vmm.detach` with `reason`).
    public static func release(vmID: String, pid: Int32, reason: String, in db: Database) throws {
        guard let current = try holder(of: vmID, in: db), current.pid == pid else { return }
        try db.execute(sql: "DELETE FROM vmm_holders WHERE vm_id = ?", arguments: [vmID])
        try AuditChain.append(AuditRecord(actor: vmmActor(pid: pid, uid: current.uid), action: .vmmDetach, resourceType: "vm", resourceID: vmID,
                                          outcome: .success, after: JSONText.object([("pid", String(pid)), ("reason", JSONText.string(reason))])),
                              in: db)
    }

    /// The VMM holding `vmID`'s devices, if any.
    public static func holder(of vmID: String, in db: Database) throws -> Holder? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM vmm_holders WHERE vm_id = ?"), arguments: [vmID]).map {
            Holder(pid: $0["pid"], uid: $0["uid"], gid: $0["gid"], issuer: $0["issuer"], since: $0["since"])
        }
    }

    /// Every VM's holder.
    public static func holders(in db: Database) throws -> [String: Holder] {
        var all: [String: Holder] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM vmm_holders")) {
            all[row["vm_id"]] = Holder(pid: row["pid"], uid: row["uid"], gid: row["gid"], issuer: row["issuer"], since: row["since"])
        }
        return all
    }

    private static func vmmActor(pid: Int32, uid: UInt32) -> AuditActor {
        AuditActor(identity: "vmm:pid=\(pid),uid=\(uid)", role: nil, remoteAddress: "unix")
    }

    private static func holderJSON(_ holder: Holder) -> String {
        JSONText.object([("pid", String(holder.pid)), ("uid", String(holder.uid)), ("gid", String(holder.gid)),
                         ("issuer", JSONText.string(holder.issuer)), ("since", JSONText.string(holder.since))])
    }
}
