import Foundation
import GRDB
import GRDBSQLite

/// The JSON clients read for each VM and binding, kept in its row (`representation`, migration
/// 0009): the renderer's tag, then the JSON. Triggers set it NULL whenever anything it shows
/// changes, whichever code path changed it; the writer renders every NULL one again before the
/// transaction commits (`renderStale`), so a committed row's representation is current or
/// visibly not there (x'' or another build's tag), and readers then use the columns.
public enum StoredRepresentations {
    /// The length of a renderer's tag.
    public static let tagSize = 8

    /// A representation read for one resource.
    public enum Lookup: Equatable {
        /// The resource's JSON and its resource version (the ETag).
        case found(json: [UInt8], resourceVersion: Int)
        /// No such resource, or its deletion was asked for.
        case missing
        /// The resource exists but its representation is not this renderer's: read its columns.
        case unrendered
    }

    /// The stored representation of the VM `id` (as `VMViews.visible` selects it).
    public static func vm(_ id: String, tag: [UInt8], in db: Database) throws -> Lookup {
        try lookup(sql: "SELECT resource_version, representation FROM vms WHERE id = ? AND deletion_requested_at IS NULL", id, tag, db)
    }

    /// The stored representation of the binding `id` (as clients may see it: its deletion not asked for).
    public static func binding(_ id: String, tag: [UInt8], in db: Database) throws -> Lookup {
        try lookup(sql: "SELECT resource_version, representation FROM bindings WHERE id = ? AND deletion_requested_at IS NULL", id, tag, db)
    }

    private static func lookup(sql: String, _ id: String, _ tag: [UInt8], _ db: Database) throws -> Lookup {
        var result = Lookup.missing
        try db.cachedStatement(sql: sql).forEachRow([id]) { row in
            result = row.representation(1, tag: tag).map { .found(json: Array($0), resourceVersion: row.integer(0)) } ?? .unrendered
        }
        return result
    }

    /// A page's representations, as `VMViews.page` selects the page: each handed to `item` in
    /// id order while the JSON is in SQLite's buffer. False when one is not this renderer's
    /// (the caller drops what it was handed and reads the columns); else the cursor to the next
    /// page, if there is one. Run it in a transaction for one snapshot.
    public static func vmPage(after: String?, limit: Int, tag: [UInt8], in db: Database,
                              _ item: (UnsafeRawBufferPointer) throws -> Void) throws -> (rendered: Bool, next: String?) {
        try page(sql: "SELECT id, representation FROM vms WHERE id > ? AND deletion_requested_at IS NULL ORDER BY id LIMIT ?",
                 arguments: [], after: after, limit: limit, tag: tag, db, item)
    }

    /// A page of bindings' representations, as `BindingRepository.page` selects it (optionally
    /// of one VM or one device); otherwise as `vmPage`.
    public static func bindingPage(vmID: String?, deviceAddress: String?, after: String?, limit: Int, tag: [UInt8], in db: Database,
                                   _ item: (UnsafeRawBufferPointer) throws -> Void) throws -> (rendered: Bool, next: String?) {
        let query = BindingRepository.pageQuery(vmID: vmID, deviceAddress: deviceAddress, columns: "id, representation")
        return try page(sql: query.sql, arguments: query.arguments, after: after, limit: limit, tag: tag, db, item)
    }

    private static func page(sql: String, arguments: [String], after: String?, limit: Int, tag: [UInt8], _ db: Database,
                             _ item: (UnsafeRawBufferPointer) throws -> Void) throws -> (rendered: Bool, next: String?) {
        var count = 0, rendered = true
        var lastID: String?, more = false
        try db.cachedStatement(sql: sql).forEachRow(arguments + [after ?? "", limit + 1] as [any SQLParameter]) { row in
            guard rendered else { return }
            guard count < limit else { more = true; return }
            guard let json = row.representation(1, tag: tag) else { rendered = false; return }
            try item(json)
            count += 1
            if count == limit { lastID = row.text(0) }
        }
        return (rendered, rendered && more ? lastID : nil)
    }

    /// Renders every representation marked stale (NULL) of a resource clients may see: the
    /// writer runs this last in each transaction. One that cannot be rendered is stored as x''
    /// (its readers use the columns).
    public static func renderStale(with renderer: any RepresentationRenderer, in db: Database) throws {
        let vms = try db.cachedStatement(sql: "SELECT id FROM vms WHERE representation IS NULL AND deletion_requested_at IS NULL").map([]) { $0.text(0) }
        for id in vms { try store(vm: id, renderer, db) }
        let bindings = try db.cachedStatement(sql: "SELECT id FROM bindings WHERE representation IS NULL AND deletion_requested_at IS NULL")
            .map([]) { $0.text(0) }
        for id in bindings { try store(binding: id, renderer, db) }
    }

    /// Renders up to `limit` VMs after `after` (in id order) that clients may see and whose
    /// representation is not `renderer`'s (rows from before migration 0009, or another
    /// build's). Returns the last id rendered, nil when there were none left.
    public static func renderMissingVMs(after: String, limit: Int, with renderer: any RepresentationRenderer, in db: Database) throws -> String? {
        let ids = try String.fetchAll(db, sql: """
            SELECT id FROM vms WHERE id > ? AND deletion_requested_at IS NULL
                AND (representation IS NULL OR substr(representation, 1, \(tagSize)) IS NOT ?) ORDER BY id LIMIT ?
            """, arguments: [after, Data(renderer.tag), limit])
        for id in ids { try store(vm: id, renderer, db) }
        return ids.last
    }

    /// As `renderMissingVMs`, for bindings.
    public static func renderMissingBindings(after: String, limit: Int, with renderer: any RepresentationRenderer, in db: Database) throws -> String? {
        let ids = try String.fetchAll(db, sql: """
            SELECT id FROM bindings WHERE id > ? AND deletion_requested_at IS NULL
                AND (representation IS NULL OR substr(representation, 1, \(tagSize)) IS NOT ?) ORDER BY id LIMIT ?
            """, arguments: [after, Data(renderer.tag), limit])
        for id in ids { try store(binding: id, renderer, db) }
        return ids.last
    }

    private static func store(vm id: String, _ renderer: any RepresentationRenderer, _ db: Database) throws {
        let json = try VMViews.visible(id, in: db).flatMap { try? renderer.vm($0) }
        try db.cachedStatement(sql: "UPDATE vms SET representation = ? WHERE id = ?").execute(arguments: [stored(json, renderer), id])
    }

    private static func store(binding id: String, _ renderer: any RepresentationRenderer, _ db: Database) throws {
        let json = try BindingRepository.fetch(id, in: db).flatMap { try? renderer.binding($0) }
        try db.cachedStatement(sql: "UPDATE bindings SET representation = ? WHERE id = ?").execute(arguments: [stored(json, renderer), id])
    }

    /// The column's value: the tag and `json`, or x'' when there is none.
    private static func stored(_ json: [UInt8]?, _ renderer: any RepresentationRenderer) -> Data {
        guard let json else { return Data() }
        precondition(renderer.tag.count == tagSize, "a renderer's tag is \(tagSize) bytes")
        return Data(renderer.tag + json)
    }
}

extension StatementRow {
    /// The JSON in column `index` when it is a representation tagged `tag`, in place (valid
    /// until the statement steps on).
    func representation(_ index: Int, tag: [UInt8]) -> UnsafeRawBufferPointer? {
        let count = Int(sqlite3_column_bytes(handle, Int32(index)))
        guard count > tag.count, let bytes = sqlite3_column_blob(handle, Int32(index)) else { return nil }
        let all = UnsafeRawBufferPointer(start: bytes, count: count)
        guard tag.withUnsafeBytes({ memcmp($0.baseAddress!, bytes, tag.count) == 0 }) else { return nil }
        return UnsafeRawBufferPointer(rebasing: all[tag.count...])
    }
}
