import GRDB

/// VMs as clients read them: each record with its memory regions and the VMM holding it, from
/// one statement (one consistent snapshot, so no transaction is needed), columns read by index.
public enum VMViews {
    /// A VM and the VMM holding it, if one does.
    public typealias Item = (record: VMRecord, holder: AttachmentRepository.Holder?)

    /// The VM's columns, then its region's (one row per region), then its holder's.
    private static let columns = VMRepository.columns.split(separator: ", ").map { "v.\($0)" }.joined(separator: ", ") + ", "
        + VMRepository.regionColumns.split(separator: ", ").map { "r.\($0)" }.joined(separator: ", ")
        + ", h.pid, h.uid, h.gid, h.issuer, h.since"
    private static let regionColumn = 10, holderColumn = 14
    private static let joins = "LEFT JOIN vm_memory_regions r ON r.vm_id = v.id LEFT JOIN vmm_holders h ON h.vm_id = v.id"

    /// The VM with `id` unless it does not exist or its deletion was asked for.
    public static func visible(_ id: String, in db: Database) throws -> Item? {
        let statement = try db.cachedStatement(sql: """
            SELECT \(columns) FROM vms v \(joins) WHERE v.id = ? AND v.deletion_requested_at IS NULL ORDER BY r.position
            """)
        return try items(Row.fetchCursor(statement, arguments: [id])).first
    }

    /// Up to `limit` VMs with ids after `after`, in id order (keyset pagination), whose
    /// deletion was not asked for.
    public static func page(after: String?, limit: Int, in db: Database) throws -> [Item] {
        let statement = try db.cachedStatement(sql: """
            SELECT \(columns) FROM (SELECT * FROM vms WHERE id > ? AND deletion_requested_at IS NULL ORDER BY id LIMIT ?) v \(joins)
            ORDER BY v.id, r.position
            """)
        return try items(Row.fetchCursor(statement, arguments: [after ?? "", limit]))
    }

    /// The rows grouped by VM: a VM's rows are adjacent, one per region (or one with NULL
    /// region columns). Rows are read in place, while the cursor lives.
    private static func items(_ cursor: RowCursor) throws -> [Item] {
        var items: [Item] = []
        try withExtendedLifetime(cursor) {
            while let row = try cursor.next() {
                let region = try VMRepository.region(row, at: regionColumn)
                if let last = items.last, last.record.id == row[0] as String {
                    if let region { items[items.count - 1].record.spec.memory.append(region) }
                    continue
                }
                let holder = (row[holderColumn] as Int32?).map { pid in
                    AttachmentRepository.Holder(pid: pid, uid: row[holderColumn + 1], gid: row[holderColumn + 2],
                                                issuer: row[holderColumn + 3], since: row[holderColumn + 4])
                }
                items.append((try VMRepository.record(from: row, regions: region.map { [$0] } ?? []), holder))
            }
        }
        return items
    }
}
