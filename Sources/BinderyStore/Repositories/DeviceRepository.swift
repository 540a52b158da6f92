import GRDB

/// Reads and writes devices: inventory snapshots, desired assignment, status.
public enum DeviceRepository {
    /// Upserts `snapshots`; devices missing from them are marked absent (drift).
    public static func syncInventory(_ snapshots: [DeviceSnapshot], in db: Database) throws {
        let now = Timestamp.now()
        let upsert = try db.cachedStatement(sql: """
            INSERT INTO devices (address, vendor_id, device_id, class_code, iommu_group, driver, numa_node, pasid_supported,
                pasid_width, ats_supported, pri_supported, refusal_rule, refusal_reason, present, inventoried_at, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
            ON CONFLICT(address) DO UPDATE SET vendor_id = excluded.vendor_id, device_id = excluded.device_id,
                class_code = excluded.class_code, iommu_group = excluded.iommu_group, driver = excluded.driver,
                numa_node = excluded.numa_node, pasid_supported = excluded.pasid_supported, pasid_width = excluded.pasid_width,
                ats_supported = excluded.ats_supported, pri_supported = excluded.pri_supported,
                refusal_rule = excluded.refusal_rule, refusal_reason = excluded.refusal_reason, present = 1,
                inventoried_at = excluded.inventoried_at
            """)
        for s in snapshots {
            try upsert.execute(arguments: [s.address, s.vendorID, s.deviceID, s.classCode, s.iommuGroup, s.driver, s.numaNode,
                                           s.pasidSupported, s.pasidWidth, s.atsSupported, s.priSupported, s.refusalRule, s.refusalReason,
                                           now, now, now])
        }
        let present = Set(snapshots.map(\.address))
        for address in try String.fetchAll(db, sql: "SELECT address FROM devices WHERE present = 1") where !present.contains(address) {
            try db.execute(sql: "UPDATE devices SET present = 0, inventoried_at = ? WHERE address = ?", arguments: [now, address])
        }
    }

    /// Sets (or clears, with nil) the VM `address` should be assigned to; audited.
    @discardableResult
    public static func assign(_ address: String, to vmID: String?, managed: Bool, actor: AuditActor, requestID: String? = nil,
                              in db: Database) throws -> DeviceRecord {
        guard let before = try fetch(address, in: db) else { throw StoreError.notFound(resourceType: "device", id: address) }
        let now = Timestamp.now()
        try db.execute(sql: """
            UPDATE devices SET vm_id = ?, managed = ?, generation = generation + 1, resource_version = resource_version + 1,
                updated_at = ? WHERE address = ?
            """, arguments: [vmID, managed, now, address])
        let after = try fetch(address, in: db)!
        try AuditChain.append(AuditRecord(actor: actor, requestID: requestID, action: vmID == nil ? AuditAction.deviceUnassign : .deviceAssign,
                                          resourceType: "device", resourceID: address, outcome: .success,
                                          before: before.auditJSON, after: after.auditJSON), in: db, at: now)
        return after
    }

    /// Assigned devices that were Attached or Degraded go back to Pending (after a restart,
    /// nothing is attached in the kernel any more).
    public static func resetAttachedToPending(exceptVMs kept: Set<String> = [], in db: Database) throws {
        let list = kept.sorted()
        try db.execute(sql: "UPDATE devices SET phase = 'Pending' WHERE phase IN ('Attached', 'Degraded') AND vm_id IS NOT NULL"
                       + (list.isEmpty ? "" : " AND vm_id NOT IN (\(list.map { _ in "?" }.joined(separator: ",")))"),
                       arguments: StatementArguments(list))
    }

    /// Records the driver a managed device had before Bindery first took it ("" for none),
    /// unless one is recorded already: the first record is the one to give the device back to.
    public static func recordOriginalDriver(_ address: String, _ driver: String, in db: Database) throws {
        try db.execute(sql: "UPDATE devices SET original_driver = ? WHERE address = ? AND original_driver IS NULL",
                       arguments: [driver, address])
    }

    /// Records what the reconciler observed.
    public static func updateStatus(_ address: String, phase: Phase, conditions: [Condition], observedGeneration: Int,
                                    originalDriver: String?? = nil, in db: Database) throws {
        guard let current = try fetch(address, in: db) else { return }
        let merged = Condition.merge(current.conditions, conditions)
        try db.execute(sql: """
            UPDATE devices SET phase = ?, conditions = ?, observed_generation = ?, original_driver = ?,
                resource_version = resource_version + 1, updated_at = ? WHERE address = ?
            """, arguments: [phase, Condition.encode(merged), observedGeneration,
                             originalDriver.map { $0 } ?? current.originalDriver, Timestamp.now(), address])
    }

    /// The device at `address`.
    public static func fetch(_ address: String, in db: Database) throws -> DeviceRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM devices WHERE address = ?"), arguments: [address]).map(record)
    }

    /// Every device, by address.
    public static func all(in db: Database) throws -> [DeviceRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM devices ORDER BY address").map(record)
    }

    /// Devices assigned to `vmID`.
    public static func assigned(to vmID: String, in db: Database) throws -> [DeviceRecord] {
        try Array(Row.fetchCursor(db.cachedStatement(sql: "SELECT * FROM devices WHERE vm_id = ? ORDER BY address"), arguments: [vmID]).map(record))
    }

    /// Addresses of the devices assigned to `vmID`, in order.
    public static func assignedAddresses(to vmID: String, in db: Database) throws -> [String] {
        try db.cachedStatement(sql: "SELECT address FROM devices WHERE vm_id = ? ORDER BY address").map([vmID]) { $0.text(0) }
    }

    static func record(_ row: Row) -> DeviceRecord {
        DeviceRecord(
            snapshot: DeviceSnapshot(address: row["address"], vendorID: row["vendor_id"], deviceID: row["device_id"],
                                     classCode: row["class_code"], iommuGroup: row["iommu_group"], driver: row["driver"],
                                     numaNode: row["numa_node"] ?? -1, pasidSupported: row["pasid_supported"],
                                     pasidWidth: row["pasid_width"], atsSupported: row["ats_supported"], priSupported: row["pri_supported"],
                                     refusalRule: row["refusal_rule"], refusalReason: row["refusal_reason"]),
            isPresent: row["present"], vmID: row["vm_id"], isManaged: row["managed"], originalDriver: row["original_driver"],
            meta: ResourceMeta(generation: row["generation"], resourceVersion: row["resource_version"],
                               createdAt: row["created_at"], updatedAt: row["updated_at"]),
            phase: Phase(rawValue: row["phase"]) ?? .pending, observedGeneration: row["observed_generation"], conditions: Condition.decode(row["conditions"]))
    }
}

extension DeviceRecord {
    /// Compact JSON for audit events.
    public var auditJSON: String {
        JSONText.object([
            ("address", JSONText.string(address)), ("vm", JSONText.optionalString(vmID)), ("managed", isManaged ? "true" : "false"),
            ("iommuGroup", JSONText.optionalInteger(snapshot.iommuGroup)), ("driver", JSONText.optionalString(snapshot.driver)),
            ("generation", String(meta.generation)), ("resourceVersion", String(meta.resourceVersion)), ("phase", JSONText.string(phase.rawValue)),
        ])
    }
}
