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

    /// Live VMs that were Ready with a context go back to Pending (after a restart, no context
    /// is open). Those Ready while awaiting their first device held nothing, and stay Ready.
    public static func resetReadyToPending(exceptVMs kept: Set<String> = [], in db: Database) throws {
        let list = kept.sorted()
        try db.execute(sql: "UPDATE vms SET phase = 'Pending' WHERE deleted_at IS NULL AND phase = 'Ready'"
                       + " AND NOT EXISTS (SELECT 1 FROM json_each(vms.conditions) WHERE json_extract(value, '$.reason') = '\(ConditionReason.awaitingFirstDevice.rawValue)')"
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

    /// The VM with `id`, if it exists.
    public static func fetch(id: String, in db: Database) throws -> VMRecord? {
        let regions = try Array(Row.fetchCursor(db.cachedStatement(sql: "SELECT * FROM vm_memory_regions WHERE vm_id = ? ORDER BY position"),
                                                arguments: [id]).map(region))
        // Read in place from the cursor's row (valid while the cursor lives): fetchOne would copy every column first.
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: "SELECT * FROM vms WHERE id = ?"), arguments: [id])
        guard let row = try cursor.next() else { return nil }
        return try withExtendedLifetime(cursor) { try record(from: row, regions: regions) }
    }

    /// Up to `limit` VMs with ids after `after`, in id order (keyset pagination); a VM whose
    /// deletion was asked for is no longer listed. Two statements whatever the page's size: the
    /// VMs, then every memory region of the id range they span.
    public static func list(after: String? = nil, limit: Int, in db: Database) throws -> [VMRecord] {
        let rows = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM vms WHERE id > ? AND deletion_requested_at IS NULL ORDER BY id LIMIT ?"),
            arguments: [after ?? "", limit])
        guard let last = rows.last?["id"] as String? else { return [] }
        var regions: [String: [MemoryRegion]] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: """
            SELECT * FROM vm_memory_regions WHERE vm_id > ? AND vm_id <= ? ORDER BY vm_id, position
            """), arguments: [after ?? "", last]) {
            regions[row["vm_id"], default: []].append(region(row))
        }
        return try rows.map { row in try record(from: row, regions: regions[row["id"]] ?? []) }
    }

    /// A memory region from its `vm_memory_regions` row.
    private static func region(_ row: Row) -> MemoryRegion {
        MemoryRegion(
            guestAddress: UInt64(bitPattern: row["guest_address"] as Int64),
            size: UInt64(bitPattern: row["size"] as Int64),
            backingPath: row["backing_path"],
            backingOffset: UInt64(bitPattern: row["backing_offset"] as Int64)
        )
    }

    /// A VM from its `vms` row and its regions.
    private static func record(from row: Row, regions: [MemoryRegion]) throws -> VMRecord {
        VMRecord(
            id: row["id"],
            spec: VMSpec(name: row["name"], labels: try labels(row["labels"]), memory: regions),
            meta: ResourceMeta(generation: row["generation"], resourceVersion: row["resource_version"],
                               createdAt: row["created_at"], updatedAt: row["updated_at"]),
            phase: Phase(rawValue: row["phase"]) ?? .pending,
            observedGeneration: row["observed_generation"],
            conditions: Condition.decode(row["conditions"])
        )
    }

    /// Labels from stored JSON (reads repeat, so decoded texts are remembered).
    private static func labels(_ text: String) throws -> [String: String] {
        if text == "{}" { return [:] }
        return try decodedLabels.value(for: text) { try JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
    }

    /// Decoded labels, by their stored text.
    private static let decodedLabels = TextMemo<[String: String]>(capacity: 4096)
}
