import Foundation
import GRDB

/// Reads and writes VMs. Every write appends its audit event in the same transaction.
public enum VMRepository {
    /// Inserts a VM with its memory regions and audits it as `vm.create`.
    public static func create(_ spec: VMSpec, id: String = ResourceID.make(prefix: "vm"),
                              actor: AuditActor, requestID: String? = nil, in db: Database) throws -> VMRecord {
        let now = Timestamp.now()
        do {
            try db.cachedStatement(sql: "INSERT INTO vms (id, name, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [id, spec.name, JSONText.object(spec.labels), now, now])
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError.conflict(resourceType: "vm", field: "name", value: spec.name)
        }
        let insertRegion = try db.cachedStatement(sql: """
            INSERT INTO vm_memory_regions (vm_id, position, guest_address, size, backing_path, backing_offset)
            VALUES (?, ?, ?, ?, ?, ?)
            """)
        for (position, region) in spec.memory.enumerated() {
            try insertRegion.execute(arguments: [id, position, Int64(bitPattern: region.guestAddress), Int64(bitPattern: region.size),
                                                 region.backingPath, Int64(bitPattern: region.backingOffset)])
        }
        // The row's defaults, as the schema sets them: no need to read back what was just written.
        let record = VMRecord(id: id, spec: spec,
                              meta: ResourceMeta(generation: 1, resourceVersion: 1, createdAt: now, updatedAt: now),
                              phase: .pending, observedGeneration: 0)
        try AuditChain.append(
            AuditRecord(actor: actor, requestID: requestID, action: .vmCreate, resourceType: "vm",
                        resourceID: id, outcome: .success, httpStatus: 201, after: record.auditJSON),
            in: db, at: now
        )
        return record
    }

    /// Changes the name and/or labels (not desired kernel state: the generation stays); audited.
    @discardableResult
    public static func update(_ id: String, name: String?, labels: [String: String]?, actor: AuditActor, requestID: String? = nil,
                              in db: Database) throws -> VMRecord {
        guard let before = try fetch(id: id, in: db), !(try isDeleted(id, in: db)) else { throw StoreError.notFound(resourceType: "vm", id: id) }
        do {
            try db.execute(sql: """
                UPDATE vms SET name = COALESCE(?, name), labels = COALESCE(?, labels), resource_version = resource_version + 1, updated_at = ?
                WHERE id = ?
                """, arguments: [name, labels.map { JSONText.object($0) }, Timestamp.now(), id])
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError.conflict(resourceType: "vm", field: "name", value: name ?? "")
        }
        let after = try fetch(id: id, in: db)!
        try AuditChain.append(AuditRecord(actor: actor, requestID: requestID, action: .vmUpdate, resourceType: "vm", resourceID: id,
                                          outcome: .success, httpStatus: 200, before: before.auditJSON, after: after.auditJSON), in: db)
        return after
    }

    /// Asks for the VM to be torn down (bindings, then devices, then its context); audited.
    @discardableResult
    public static func requestDeletion(_ id: String, actor: AuditActor, requestID: String? = nil, in db: Database) throws -> VMRecord {
        guard let before = try fetch(id: id, in: db), !(try isDeleted(id, in: db)) else { throw StoreError.notFound(resourceType: "vm", id: id) }
        let now = Timestamp.now()
        try db.execute(sql: """
            UPDATE vms SET deletion_requested_at = COALESCE(deletion_requested_at, ?), generation = generation + 1,
                resource_version = resource_version + 1, updated_at = ? WHERE id = ?
            """, arguments: [now, now, id])
        let after = try fetch(id: id, in: db)!
        try AuditChain.append(AuditRecord(actor: actor, requestID: requestID, action: .vmDelete, resourceType: "vm", resourceID: id,
                                          outcome: .success, httpStatus: 202, before: before.auditJSON, after: after.auditJSON), in: db, at: now)
        return after
    }

    /// True when deletion was asked for.
    public static func isDeletionRequested(_ id: String, in db: Database) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT deletion_requested_at IS NOT NULL FROM vms WHERE id = ?"), arguments: [id]) ?? false
    }

    /// Live VMs that were Ready go back to Pending (after a restart, no context is open), to
    /// be reconciled again. Those Ready while awaiting their first device with anonymous memory
    /// only held nothing and depend on no policy: they stay Ready. Those with backing files go
    /// through the memory policy again, which may have changed with the restart.
    public static func resetReadyToPending(exceptVMs kept: Set<String> = [], in db: Database) throws {
        let list = kept.sorted()
        try db.execute(sql: "UPDATE vms SET phase = 'Pending' WHERE deleted_at IS NULL AND phase = 'Ready'"
                       + " AND NOT (json_valid(vms.conditions) AND EXISTS (SELECT 1 FROM json_each(vms.conditions)"
                       + " WHERE json_extract(value, '$.reason') = '\(ConditionReason.awaitingFirstDevice.rawValue)')"
                       + " AND NOT EXISTS (SELECT 1 FROM vm_memory_regions r WHERE r.vm_id = vms.id AND r.backing_path IS NOT NULL))"
                       + (list.isEmpty ? "" : " AND id NOT IN (\(list.map { _ in "?" }.joined(separator: ",")))"),
                       arguments: StatementArguments(list))
    }

    /// True once torn down (a tombstone).
    public static func isDeleted(_ id: String, in db: Database) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT deleted_at IS NOT NULL FROM vms WHERE id = ?"), arguments: [id]) ?? false
    }

    /// Records what the reconciler observed.
    public static func updateStatus(_ id: String, phase: Phase, conditions: [Condition], observedGeneration: Int, in db: Database) throws {
        let current: String = try String.fetchOne(db.cachedStatement(sql: "SELECT conditions FROM vms WHERE id = ?"), arguments: [id]) ?? "[]"
        try db.cachedStatement(sql: """
            UPDATE vms SET phase = ?, conditions = ?, observed_generation = ?, resource_version = resource_version + 1, updated_at = ?
            WHERE id = ?
            """).execute(arguments: [phase, Condition.encode(Condition.merge(Condition.decode(current), conditions)), observedGeneration,
                                     Timestamp.now(), id])
    }

    /// Turns the VM into a tombstone once everything it held is released.
    public static func markDeleted(_ id: String, in db: Database) throws {
        try db.execute(sql: "UPDATE vms SET phase = 'Deleted', deleted_at = ?, updated_at = ? WHERE id = ?",
                       arguments: [Timestamp.now(), Timestamp.now(), id])
    }

    /// Ids of the live VMs the reconciler still has work on: not Ready, not yet at their
    /// generation, or being deleted. Read through the partial index `vms_unsettled` (the
    /// condition is its own, word for word), so settled VMs cost nothing.
    public static func unsettledIDs(in db: Database) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT id FROM vms INDEXED BY vms_unsettled
            WHERE deleted_at IS NULL AND (phase != 'Ready' OR observed_generation != generation OR deletion_requested_at IS NOT NULL)
            """)
    }

    /// Columns of `vms` in the order `record(from:regions:)` reads them by index (a lookup by
    /// name lowercases the name on every read: 16% of a VM list's CPU).
    static let columns = "id, name, labels, generation, resource_version, created_at, updated_at, phase, observed_generation, conditions"
    /// Columns of `vm_memory_regions` in the order `region(_:at:)` reads them.
    static let regionColumns = "guest_address, size, backing_path, backing_offset"

    /// The VM with `id`, if it exists.
    public static func fetch(id: String, in db: Database) throws -> VMRecord? {
        let regions = try db.cachedStatement(sql: "SELECT \(regionColumns) FROM vm_memory_regions WHERE vm_id = ? ORDER BY position")
            .map([id]) { region($0, at: 0) }.compactMap { $0 }
        return try db.cachedStatement(sql: "SELECT \(columns) FROM vms WHERE id = ?").map([id]) { try record(from: $0, regions: regions) }.first
    }

    /// The VM with `id` with where its deletion stands (asked for; done), in one read of its
    /// row: what the reconciler decides on.
    public static func fetchWithLifecycle(id: String, in db: Database) throws -> (vm: VMRecord, deletionRequested: Bool, deleted: Bool)? {
        let regions = try db.cachedStatement(sql: "SELECT \(regionColumns) FROM vm_memory_regions WHERE vm_id = ? ORDER BY position")
            .map([id]) { region($0, at: 0) }.compactMap { $0 }
        return try db.cachedStatement(sql: "SELECT \(columns), deletion_requested_at IS NOT NULL, deleted_at IS NOT NULL FROM vms WHERE id = ?")
            .map([id]) { row in (try record(from: row, regions: regions), row.integer(10) != 0, row.integer(11) != 0) }.first
    }

    /// A memory region from the `regionColumns` of `row`, starting at column `first`; nil when
    /// they are NULL (a VM without regions, outer-joined).
    static func region(_ row: StatementRow, at first: Int) -> MemoryRegion? {
        guard !row.isNull(first) else { return nil }
        return MemoryRegion(guestAddress: UInt64(bitPattern: row.int64(first)), size: UInt64(bitPattern: row.int64(first + 1)),
                            backingPath: row.optionalText(first + 2), backingOffset: UInt64(bitPattern: row.int64(first + 3)))
    }

    /// A VM from the `columns` of `row` (the first ten) and its regions.
    static func record(from row: StatementRow, regions: [MemoryRegion]) throws -> VMRecord {
        VMRecord(
            id: row.text(0),
            spec: VMSpec(name: row.text(1), labels: try labels(row.text(2)), memory: regions),
            meta: ResourceMeta(generation: row.integer(3), resourceVersion: row.integer(4), createdAt: row.text(5), updatedAt: row.text(6)),
            phase: Phase(rawValue: row.text(7)) ?? .pending,
            observedGeneration: row.integer(8),
            conditions: Condition.decode(row.text(9))
        )
    }

    /// Labels from stored JSON (reads repeat, so decoded texts are remembered).
    private static func labels(_ text: String) throws -> [String: String] {
        if text == "{}" { return [:] }
        if let plain = StoredFormReader.stringMap(text) { return plain }
        return try decodedLabels.value(for: text) { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
    }

    /// Decoded labels, by their stored text.
    private static let decodedLabels = TextMemo<[String: String]>(capacity: 4096)
}
