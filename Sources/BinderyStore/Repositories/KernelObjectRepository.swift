import GRDB

/// Object ids inside a VM's kept iommufd (see `Migrations/0004_kernel_objects.sql`).
public enum KernelObjectRepository {
    /// Makes `vmID`'s recorded ids exactly `objects` (none: forgets the VM's).
    public static func replace(vmID: String, with objects: [String: UInt32], in db: Database) throws {
        let current = try fetch(vmID: vmID, in: db)
        guard current != objects else { return }
        for name in current.keys where objects[name] == nil {
            try db.execute(sql: "DELETE FROM kernel_objects WHERE vm_id = ? AND name = ?", arguments: [vmID, name])
        }
        for (name, id) in objects where current[name] != id {
            try db.execute(sql: """
                INSERT INTO kernel_objects (vm_id, name, object_id) VALUES (?, ?, ?)
                ON CONFLICT(vm_id, name) DO UPDATE SET object_id = excluded.object_id
                """, arguments: [vmID, name, Int64(id)])
        }
    }

    /// `vmID`'s recorded ids.
    public static func fetch(vmID: String, in db: Database) throws -> [String: UInt32] {
        var objects: [String: UInt32] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, object_id FROM kernel_objects WHERE vm_id = ?", arguments: [vmID]) {
            objects[row["name"]] = UInt32(truncatingIfNeeded: row["object_id"] as Int64)
        }
        return objects
    }
}
