import GRDB

/// Reads and writes guest PASID bindings. Client changes are audited here; the reconciler's
/// status updates go through `updateStatus` and audit their kernel actions themselves.
public enum BindingRepository {
    /// Inserts a binding (phase Pending); audited as `binding.create`.
    public static func create(_ spec: BindingSpec, id: String = ResourceID.make(prefix: "bnd"), actor: AuditActor,
                              requestID: String? = nil, in db: Database) throws -> BindingRecord {
        let now = Timestamp.now()
        do {
            try db.cachedStatement(sql: """
                INSERT INTO bindings (id, vm_id, device_address, type, guest_pasid, requested_host_pasid, format, version,
                    page_table_address, address_width, format_fields, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [id, spec.vmID, spec.deviceAddress, spec.type, spec.guestPASID, spec.requestedHostPASID,
                                         spec.format, spec.version, Int64(bitPattern: spec.pageTableAddress), spec.addressWidth,
                                         spec.formatFields, now, now])
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError.conflict(resourceType: "binding", field: "guestPasid", value: "\(spec.guestPASID) on \(spec.deviceAddress)")
        }
        let record = try fetch(id, in: db)!
        try AuditChain.append(AuditRecord(actor: actor, requestID: requestID, action: .bindingCreate, resourceType: "binding",
                                          resourceID: id, outcome: .success, httpStatus: 202, after: record.auditJSON), in: db, at: now)
        return record
    }

    /// Replaces the page table (the guest switched tables): a new generation for the reconciler.
    @discardableResult
    public static func replacePageTable(_ id: String, address: UInt64, addressWidth: Int, actor: AuditActor,
                                        requestID: String? = nil, in db: Database) throws -> BindingRecord {
        guard let before = try fetch(id, in: db), before.deletedAt == nil else { throw StoreError.notFound(resourceType: "binding", id: id) }
        try db.execute(sql: """
            UPDATE bindings SET page_table_address = ?, address_width = ?, generation = generation + 1,
                resource_version = resource_version + 1, updated_at = ? WHERE id = ?
            """, arguments: [Int64(bitPattern: address), addressWidth, Timestamp.now(), id])
        let after = try fetch(id, in: db)!
        try AuditChain.append(AuditRecord(actor: actor, requestID: requestID, action: .bindingReplace, resourceType: "binding",
                                          resourceID: id, outcome: .success, httpStatus: 202, before: before.auditJSON,
                                          after: after.auditJSON), in: db)
        return after
    }

    /// Asks for the binding to be unbound and removed; audited as `binding.delete`.
    @discardableResult
    public static func requestDeletion(_ id: String, actor: AuditActor, requestID: String? = nil, in db: Database) throws -> BindingRecord {
        guard let before = try fetch(id, in: db), before.deletedAt == nil else { throw StoreError.notFound(resourceType: "binding", id: id) }
        try db.execute(sql: """
            UPDATE bindings SET deletion_requested_at = COALESCE(deletion_requested_at, ?), generation = generation + 1,
                resource_version = resource_version + 1, updated_at = ? WHERE id = ?
            """, arguments: [Timestamp.now(), Timestamp.now(), id])
        let after = try fetch(id, in: db)!
        try AuditChain.append(AuditRecord(actor: actor, requestID: requestID, action: .bindingDelete, resourceType: "binding",
                                          resourceID: id, outcome: .success, httpStatus: 202, before: before.auditJSON,
                                          after: after.auditJSON), in: db)
        return after
    }

    /// What the reconciler observed. `hostPASID` .some(nil) clears it.
    public static func updateStatus(_ id: String, phase: Phase, conditions: [Condition], observedGeneration: Int,
                                    hostPASID: Int?? = nil, lastError: (call: String, errno: String)? = nil,
                                    nextRetryAt: String? = nil, in db: Database) throws {
        guard let current = try fetch(id, in: db) else { return }
        try updateStatus(current, phase: phase, conditions: conditions, observedGeneration: observedGeneration, hostPASID: hostPASID,
                         lastError: lastError, nextRetryAt: nextRetryAt, in: db)
    }

    /// Like `updateStatus(_:...)`, for a caller that already read the record `current`
    /// in this pass (its conditions are merged without reading and decoding them again).
    public static func updateStatus(_ current: BindingRecord, phase: Phase, conditions: [Condition], observedGeneration: Int,
                                    hostPASID: Int?? = nil, lastError: (call: String, errno: String)? = nil,
                                    nextRetryAt: String? = nil, in db: Database) throws {
        let id = current.id
        let merged = Condition.merge(current.conditions, conditions)
        try db.cachedStatement(sql: """
            UPDATE bindings SET phase = ?, conditions = ?, observed_generation = ?, host_pasid = ?, last_error_errno = ?,
                last_error_call = ?, next_retry_at = ?, resource_version = resource_version + 1, updated_at = ? WHERE id = ?
            """).execute(arguments: [phase, Condition.encode(merged), observedGeneration,
                                     hostPASID.map { $0 } ?? current.hostPASID, lastError?.errno, lastError?.call, nextRetryAt,
                                     Timestamp.now(), id])
    }

    /// Turns the binding into a tombstone (unbound, PASID freed).
    public static func markDeleted(_ id: String, in db: Database) throws {
        try db.execute(sql: """
            UPDATE bindings SET phase = 'Deleted', deleted_at = ?, host_pasid = NULL, resource_version = resource_version + 1,
                updated_at = ? WHERE id = ?
            """, arguments: [Timestamp.now(), Timestamp.now(), id])
    }

    /// Columns in the order `record(_:)` reads them by index: name lookups on every row cost
    /// a quarter of the reconciler's CPU.
    static let columns = """
        id, vm_id, device_address, type, guest_pasid, requested_host_pasid, format, version, page_table_address, address_width,
        format_fields, generation, resource_version, created_at, updated_at, deletion_requested_at, deleted_at, phase,
        observed_generation, conditions, host_pasid, last_error_errno, last_error_call, next_retry_at
        """

    /// The binding with `id`, tombstones included.
    public static func fetch(_ id: String, in db: Database) throws -> BindingRecord? {
        try db.cachedStatement(sql: "SELECT \(columns) FROM bindings WHERE id = ?").map([id], record).first
    }

    /// The `AND …` terms that keep only `vmID`'s and/or `deviceAddress`'s bindings, and their
    /// arguments: only the terms asked for, so SQLite can use the VM's or device's index (a
    /// `? IS NULL OR vm_id = ?` term cannot, and walked every binding ever made). `live` is
    /// served by `bindings_by_vm` and `bindings_live_guest_pasid`, `page` by the
    /// `bindings_listed*` indexes (migration 0008; `ListingIndexTests` holds the plans).
    private static func ownerFilter(vmID: String?, deviceAddress: String?) -> (sql: String, arguments: [String]) {
        var sql = "", arguments: [String] = []
        if let vmID { sql += " AND vm_id = ?"; arguments += [vmID] }
        if let deviceAddress { sql += " AND device_address = ?"; arguments += [deviceAddress] }
        return (sql, arguments)
    }

    /// Ids of every live (not deleted) binding, for the reconciler's resync.
    public static func liveIDs(in db: Database) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT id FROM bindings WHERE deleted_at IS NULL")
    }

    /// Ids of the live (not deleted) bindings of `vmID`, in order.
    public static func liveIDs(vmID: String, in db: Database) throws -> [String] {
        try db.cachedStatement(sql: "SELECT id FROM bindings WHERE deleted_at IS NULL AND vm_id = ? ORDER BY id").map([vmID]) { $0.text(0) }
    }

    /// Live (not deleted) bindings, optionally of one VM or device.
    public static func live(vmID: String? = nil, deviceAddress: String? = nil, in db: Database) throws -> [BindingRecord] {
        let (filter, arguments) = ownerFilter(vmID: vmID, deviceAddress: deviceAddress)
        return try db.cachedStatement(sql: "SELECT \(columns) FROM bindings WHERE deleted_at IS NULL\(filter) ORDER BY id").map(arguments, record)
    }

    /// Up to `limit` bindings with ids after `after` whose deletion was not asked for,
    /// optionally of one VM or device.
    public static func page(vmID: String?, deviceAddress: String?, after: String?, limit: Int, in db: Database) throws -> [BindingRecord] {
        let (sql, arguments) = pageQuery(vmID: vmID, deviceAddress: deviceAddress)
        return try db.cachedStatement(sql: sql).map(arguments + [after ?? "", limit] as [any SQLParameter], record)
    }

    /// `page`'s SELECT of `columns` (its last two arguments, the cursor and the limit, to be appended).
    static func pageQuery(vmID: String?, deviceAddress: String?, columns: String = columns) -> (sql: String, arguments: [String]) {
        let (filter, arguments) = ownerFilter(vmID: vmID, deviceAddress: deviceAddress)
        return ("SELECT \(columns) FROM bindings WHERE deletion_requested_at IS NULL\(filter) AND id > ? ORDER BY id LIMIT ?", arguments)
    }

    /// Forgets every host PASID (a restarted daemon holds none: the kernel released them).
    public static func forgetAllHostPASIDs(exceptVMs kept: Set<String> = [], in db: Database) throws {
        if kept.isEmpty { return try db.execute(sql: "DELETE FROM host_pasids") }
        let list = kept.sorted()
        try db.execute(sql: "DELETE FROM host_pasids WHERE binding_id NOT IN (SELECT id FROM bindings WHERE vm_id IN (\(list.map { _ in "?" }.joined(separator: ","))))",
                       arguments: StatementArguments(list))
    }

    /// Host PASID bookkeeping: records that `binding` holds `pasid` on `device` (unique per device).
    public static func recordHostPASID(_ pasid: Int, device: String, binding: String, in db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO host_pasids (device_address, pasid, binding_id, allocated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT(binding_id) DO UPDATE SET pasid = excluded.pasid, device_address = excluded.device_address
            """).execute(arguments: [device, pasid, binding, Timestamp.now()])
    }

    /// Forgets the host PASID `binding` held.
    public static func releaseHostPASID(binding: String, in db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM host_pasids WHERE binding_id = ?").execute(arguments: [binding])
    }

    static func record(_ row: StatementRow) -> BindingRecord {
        var spec = BindingSpec(vmID: row.text(1), deviceAddress: row.text(2), guestPASID: row.integer(4), requestedHostPASID: row.optionalInteger(5),
                               pageTableAddress: UInt64(bitPattern: row.int64(8)), addressWidth: row.integer(9), formatFields: row.text(10))
        spec.type = row.text(3)
        spec.format = row.text(6)
        spec.version = row.integer(7)
        return BindingRecord(
            id: row.text(0), spec: spec,
            meta: ResourceMeta(generation: row.integer(11), resourceVersion: row.integer(12), createdAt: row.text(13), updatedAt: row.text(14)),
            deletionRequestedAt: row.optionalText(15), deletedAt: row.optionalText(16), phase: Phase(rawValue: row.text(17)) ?? .pending,
            observedGeneration: row.integer(18), conditions: Condition.decode(row.text(19)), hostPASID: row.optionalInteger(20),
            lastErrorErrno: row.optionalText(21), lastErrorCall: row.optionalText(22), nextRetryAt: row.optionalText(23))
    }
}
