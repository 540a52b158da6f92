import GRDB

/// VMs as clients read them: each record with its memory regions and the VMM holding it,
/// columns read by index.
public enum VMViews {
    /// A VM and the VMM holding it, if one does.
    public typealias Item = (record: VMRecord, holder: AttachmentRepository.Holder?)

    /// The VM's columns, then its region's (one row per region), then its holder's.
    private static let columns = VMRepository.columns.split(separator: ", ").map { "v.\($0)" }.joined(separator: ", ") + ", "
        + VMRepository.regionColumns.split(separator: ", ").map { "r.\($0)" }.joined(separator: ", ")
        + ", h.pid, h.uid, h.gid, h.issuer, h.since"
    private static let regionColumn = 10, holderColumn = 14
    private static let joins = "LEFT JOIN vm_memory_regions r ON r.vm_id = v.id LEFT JOIN vmm_holders h ON h.vm_id = v.id"

    /// The VM with `id` unless it does not exist or its deletion was asked for: one statement,
    /// a consistent snapshot on its own (no transaction needed).
    public static func visible(_ id: String, in db: Database) throws -> Item? {
        var item: Item?
        // One row per region (or one with NULL region columns).
        try db.cachedStatement(sql: visibleQuery).forEachRow([id]) { row in
            if item == nil { item = (try VMRepository.record(from: row, regions: []), holder(row, at: holderColumn)) }
            if let region = VMRepository.region(row, at: regionColumn) { item?.record.spec.memory.append(region) }
        }
        return item
    }

    /// `visible`'s SELECT.
    private static let visibleQuery = """
        SELECT \(columns) FROM vms v \(joins) WHERE v.id = ? AND v.deletion_requested_at IS NULL ORDER BY r.position
        """

    /// Up to `limit` VMs with ids after `after`, in id order (keyset pagination), whose
    /// deletion was not asked for. Three range reads whatever the page's size (VMs, then the
    /// regions and holders of the ids they span, merged in id order): joined per VM instead,
    /// SQLite spent 3 B-tree searches per VM, four times the reads themselves. Run it in a
    /// transaction for one snapshot.
    public static func page(after: String?, limit: Int, in db: Database) throws -> [Item] {
        var items: [Item] = try db.cachedStatement(sql: pageQuery).map([after ?? "", limit]) { (try VMRepository.record(from: $0, regions: []), nil) }
        guard let last = items.last?.record.id else { return [] }
        let range: [any SQLParameter] = [after ?? "", last]
        var index = 0
        try db.cachedStatement(sql: """
            SELECT vm_id, \(VMRepository.regionColumns) FROM vm_memory_regions WHERE vm_id > ? AND vm_id <= ? ORDER BY vm_id, position
            """).forEachRow(range) { row in
            guard let region = VMRepository.region(row, at: 1), let at = seek(row, from: &index, in: items) else { return }
            items[at].record.spec.memory.append(region)
        }
        index = 0
        try db.cachedStatement(sql: """
            SELECT vm_id, pid, uid, gid, issuer, since FROM vmm_holders WHERE vm_id > ? AND vm_id <= ? ORDER BY vm_id
            """).forEachRow(range) { row in
            guard let at = seek(row, from: &index, in: items) else { return }
            items[at].holder = holder(row, at: 1)
        }
        return items
    }

    /// The page's first read: the VMs (served by the partial index `vms_listed`).
    static let pageQuery = "SELECT \(VMRepository.columns) FROM vms WHERE id > ? AND deletion_requested_at IS NULL ORDER BY id LIMIT ?"

    /// The holder in `row`'s columns pid, uid, gid, issuer, since from column `first`; nil when
    /// they are NULL (no holder, outer-joined).
    private static func holder(_ row: StatementRow, at first: Int) -> AttachmentRepository.Holder? {
        guard !row.isNull(first) else { return nil }
        return AttachmentRepository.Holder(pid: Int32(truncatingIfNeeded: row.int64(first)), uid: UInt32(truncatingIfNeeded: row.int64(first + 1)),
                                           gid: UInt32(truncatingIfNeeded: row.int64(first + 2)), issuer: row.text(first + 3), since: row.text(first + 4))
    }

    /// The index of the item whose id is `row`'s first column, searching forward from `index`
    /// (rows come in id order, as the items do); nil when no item has it (a VM being deleted).
    private static func seek(_ row: StatementRow, from index: inout Int, in items: [Item]) -> Int? {
        while index < items.count, row.compareText(0, to: items[index].record.id) > 0 { index += 1 }
        return index < items.count && row.compareText(0, to: items[index].record.id) == 0 ? index : nil
    }
}
