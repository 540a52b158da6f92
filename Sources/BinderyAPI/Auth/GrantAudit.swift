import BinderyStore

/// Every change of the grants in force is an audit event: who (which identity) was granted,
/// changed or revoked which role, and from which file. Auditors see role changes in the same
/// chain as everything else.
enum GrantAudit {
    /// A writer that records changes in the order they were seen, off the request path.
    static func recorder(source: String, store: Store) -> @Sendable (RoleMap, RoleMap) -> Void {
        let (changes, continuation) = AsyncStream.makeStream(of: (RoleMap, RoleMap).self)
        Task {
            for await (before, after) in changes { await record(from: before, to: after, source: source, in: store) }
        }
        return { before, after in continuation.yield((before, after)) }
    }

    /// Appends one `grant.set` / `grant.revoke` event per identity whose role changed.
    static func record(from before: RoleMap, to after: RoleMap, source: String, in store: Store) async {
        let identities = Set(before.roles.keys).union(after.roles.keys).sorted()
        let records = identities.compactMap { identity -> AuditRecord? in
            let old = before.roles[identity], new = after.roles[identity]
            guard old != new else { return nil }
            return AuditRecord(actor: AuditActor(identity: "grants:" + source), action: new == nil ? AuditAction.grantRevoke : .grantSet,
                               resourceType: "grant", resourceID: identity, outcome: .success,
                               before: old.map { JSONText.object(["role": $0.rawValue]) },
                               after: new.map { JSONText.object(["role": $0.rawValue]) })
        }
        guard !records.isEmpty else { return }
        _ = try? await store.write { db in
            for record in records { try AuditChain.append(record, in: db) }
        }
    }
}
