import Foundation
import GRDB
import GRDBSQLite

/// The JSON clients read for each VM and binding, kept in its row (`representation`, migration
/// 0009): the renderer's tag, then the JSON. Triggers set it NULL in the transaction that changes
/// anything it shows, whichever code path changed it, so a tagged representation is current.
/// One that is not there (NULL, or another build's tag) is read from the columns, and the reader
/// asks for it to be rendered (`Store.requestRendering`): the writer renders what is read, off
/// the path of the writes that made it stale (rendered at every commit instead, a create cost
/// 20 µs more).
public enum StoredRepresentations {
    /// The length of a renderer's tag.
    public static let tagSize = 8

    /// A representation read for one resource.
    public enum Lookup: Equatable, Sendable {
        /// The resource's JSON and its resource version (the ETag).
        case found(json: [UInt8], resourceVersion: Int)
        /// No such resource, or its deletion was asked for.
        case missing
        /// The resource exists but its representation is not this renderer's: read its columns
        /// (and ask for it: `Store.requestRendering`).
        case unrendered
        /// The resource exists and cannot be kept rendered: read its columns.
        case columnsOnly
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
            switch row.representation(1, tag: tag) {
            case let .json(json): result = .found(json: Array(json), resourceVersion: row.integer(0))
            case .columnsOnly: result = .columnsOnly
            case .unrendered: result = .unrendered
            }
        }
        return result
    }

    /// A page's representations, as `VMViews.page` selects the page: each handed to `item` in
    /// id order while the JSON is in SQLite's buffer, and the cursor to the next page if there is
    /// one. When some are not there (`complete` false), the caller drops what it was handed and
    /// reads the columns; `unrendered` are the ids to ask for. Run it in a transaction for one snapshot.
    public static func vmPage(after: String?, limit: Int, tag: [UInt8], in db: Database,
                              _ item: (UnsafeRawBufferPointer) throws -> Void) throws -> Page {
        try page(sql: "SELECT id, representation FROM vms WHERE id > ? AND deletion_requested_at IS NULL ORDER BY id LIMIT ?",
                 arguments: [], after: after, limit: limit, tag: tag, db, item)
    }

    /// A page of bindings' representations, as `BindingRepository.page` selects it (optionally
    /// of one VM or one device); otherwise as `vmPage`.
    public static func bindingPage(vmID: String?, deviceAddress: String?, after: String?, limit: Int, tag: [UInt8], in db: Database,
                                   _ item: (UnsafeRawBufferPointer) throws -> Void) throws -> Page {
        let query = BindingRepository.pageQuery(vmID: vmID, deviceAddress: deviceAddress, columns: "id, representation")
        return try page(sql: query.sql, arguments: query.arguments, after: after, limit: limit, tag: tag, db, item)
    }

    private static func page(sql: String, arguments: [String], after: String?, limit: Int, tag: [UInt8], _ db: Database,
                             _ item: (UnsafeRawBufferPointer) throws -> Void) throws -> Page {
        var count = 0, page = Page(complete: true, unrendered: [], next: nil)
        var lastID: String?, more = false
        try db.cachedStatement(sql: sql).forEachRow(arguments + [after ?? "", limit + 1] as [any SQLParameter]) { row in
            guard count < limit else { more = true; return }
            count += 1
            if count == limit { lastID = row.text(0) }
            switch row.representation(1, tag: tag) {
            case let .json(json): if page.complete { try item(json) }
            case .columnsOnly: page.complete = false
            case .unrendered:
                page.complete = false
                page.unrendered.append(row.text(0))
            }
        }
        page.next = more ? lastID : nil
        return page
    }

    /// What `vmPage` and `bindingPage` found.
    public struct Page: Sendable {
        /// Whether every item was handed over (else read the page from the columns).
        public var complete: Bool
        /// The items not rendered by this build, to ask for.
        public var unrendered: [String]
        /// The cursor to the next page, if there is one.
        public var next: String?
    }

    /// Renders and stores the representations of the VMs `vms` and bindings `bindings` that
    /// clients may see and that are not `renderer`'s yet (another request may have had them rendered).
    public static func render(vms: some Sequence<String>, bindings: some Sequence<String>, with renderer: any RepresentationRenderer,
                              in db: Database) throws {
        precondition(renderer.tag.count == tagSize, "a renderer's tag is \(tagSize) bytes")
        let tag = Data(renderer.tag)
        for id in vms where try isUnrendered("vms", id, tag, db) {
            guard let item = try VMViews.visible(id, in: db) else { continue }
            let value = stored(tag) { try renderer.vm(item) }
            try db.cachedStatement(sql: "UPDATE vms SET representation = ? WHERE id = ?").execute(arguments: [value, id])
        }
        for id in bindings where try isUnrendered("bindings", id, tag, db) {
            guard let record = try BindingRepository.fetch(id, in: db) else { continue }
            let value = stored(tag) { try renderer.binding(record) }
            try db.cachedStatement(sql: "UPDATE bindings SET representation = ? WHERE id = ?").execute(arguments: [value, id])
        }
    }

    /// Whether row `id` of `table` is one clients may see whose representation is not tagged `tag`.
    private static func isUnrendered(_ table: String, _ id: String, _ tag: Data, _ db: Database) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: """
            SELECT representation IS NULL OR substr(representation, 1, \(tagSize)) IS NOT ? FROM \(table)
            WHERE id = ? AND deletion_requested_at IS NULL
            """), arguments: [tag, id]) ?? false
    }

    /// The column's value: `tag` and the JSON `render` writes; the tag alone when it cannot be
    /// kept (nil: reads use the columns, and do not ask again until a change sets it NULL);
    /// NULL when rendering failed.
    private static func stored(_ tag: Data, _ render: () throws -> [UInt8]?) -> Data? {
        do { return tag + (try render() ?? []) } catch { return nil }
    }
}

/// What a row's `representation` column holds for a reader with a given tag.
enum StoredColumn {
    /// The JSON, in place (valid until the statement steps on).
    case json(UnsafeRawBufferPointer)
    /// The tag alone: this build cannot keep it (`RepresentationRenderer`); read the columns.
    case columnsOnly
    /// NULL, or another build's tag.
    case unrendered
}

extension StatementRow {
    /// Column `index` as a representation, for a reader whose renderer is tagged `tag`.
    func representation(_ index: Int, tag: [UInt8]) -> StoredColumn {
        let count = Int(sqlite3_column_bytes(handle, Int32(index)))
        guard count >= tag.count, let bytes = sqlite3_column_blob(handle, Int32(index)),
              tag.withUnsafeBytes({ memcmp($0.baseAddress!, bytes, tag.count) == 0 }) else { return .unrendered }
        guard count > tag.count else { return .columnsOnly }
        return .json(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(start: bytes, count: count)[tag.count...]))
    }
}
