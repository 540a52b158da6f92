import BinderyHTTP
import BinderyStore

/// Read-only operations answered on the event loop that received them, from that loop's own
/// read connection (`Store.readHere`): no task, no hop to the reader pool's threads and back
/// through the eventfd. VMs and bindings are answered from the JSON stored with each row
/// (`StoredRepresentations`); where it is not there, and for the rest, they run the same
/// `ReadViews` as the generated handlers and write the generated types' JSON by hand
/// (`BindingJSON`, `VMJSON`, `CompactJSONEncoder`). Either way, byte for byte what the
/// generated path gives (`LoopReadsTests` holds them equal). Anything unusual in a
/// request (a percent-escape, a repeated or unknown query key, an Accept that is not plainly
/// JSON, a caller the operation refuses, a long page) is left to the generated path, which
/// knows every rule and records denials.
struct LoopReads: Sendable {
    /// One read operation: the request's path parameters and query in, a response out (nil:
    /// take the generated path).
    typealias Read = @Sendable (LoopReads, LoopRequest) throws -> HTTPResponse?

    /// What a read gets from the request.
    struct LoopRequest {
        /// Path parameters, as the route matched them.
        let path: [String: Substring]
        /// Query parameters (plain: see `plainQuery`).
        let query: [Substring: Substring]
        /// The event loop answering (`Store.readHere`'s slot).
        let loop: Int
    }

    /// A read answered on the reader pool (too long to hold a loop up), encoded as the loop's are.
    typealias PoolRead = @Sendable (LoopReads, LoopRequest) async throws -> HTTPResponse?

    /// The store the reads come from.
    let store: Store

    /// The longest list page answered on the loop (the default page size): a longer one is
    /// up to ten times the work and holds every connection of that loop up meanwhile.
    static let loopPageLimit = 100

    /// The pool answer for `operationID`, if it has one: a page of the audit history (an
    /// index walk over 100 events) is written from SQLite's row buffers (`AuditNDJSON.page`).
    static func poolRead(for operationID: String) -> (read: PoolRead, queryKeys: Set<Substring>)? {
        guard operationID == "listAuditEvents" else { return nil }
        return ({ reads, request in
            guard request.hasPlainIntegers(["limit", "after"]) else { return nil }
            let limit = try Validation.pageLimit(request.integer("limit"))
            let since = request.string("since"), until = request.string("until")
            let query = try APIHandler.auditQuery(
                actor: request.string("actor"), action: request.string("action"), resourceType: request.string("resourceType"),
                resourceID: request.string("resourceId"), outcome: request.string("outcome"), since: since.flatMap(Timestamp.parse),
                until: until.flatMap(Timestamp.parse), after: request.integer("after").map(Int64.init))
            // Written from the row buffers as the NDJSON export's lines are, not through the generated types.
            let body = try await reads.store.read { db in try AuditNDJSON.page(query, limit: limit, in: db) }
            return HTTPResponse(status: 200, headers: [("Content-Type", "application/json; charset=utf-8")], body: body)
        }, ["actor", "action", "resourceType", "resourceId", "outcome", "since", "until", "after", "limit"])
    }

    /// The loop answer for `operationID`, if it has one.
    static func read(for operationID: String) -> (read: Read, queryKeys: Set<Substring>)? {
        switch operationID {
        case "getHealth": return ({ _, _ in try json(Components.Schemas.Health(status: .ok)) }, [])
        case "getBinding":
            return ({ reads, request in
                guard let id = request.plainPath("id") else { return nil }
                return try reads.one("binding", id, on: request, stored: { tag, db in try StoredRepresentations.binding(id, tag: tag, in: db) },
                                     askRendering: { reads.store.requestRendering(bindings: [id]) }) { db in
                    try ReadViews.bindingRecord(id, in: db).map { (try BindingJSON.bytes($0), $0.meta.resourceVersion) }
                }
            }, [])
        case "getVM":
            return ({ reads, request in
                guard let id = request.plainPath("id") else { return nil }
                return try reads.one("vm", id, on: request, stored: { tag, db in try StoredRepresentations.vm(id, tag: tag, in: db) },
                                     askRendering: { reads.store.requestRendering(vms: [id]) }) { db in
                    try ReadViews.vmRecord(id, in: db).map { (try VMJSON.bytes($0.0, holder: $0.1), $0.0.meta.resourceVersion) }
                }
            }, [])
        case "listVMs":
            return ({ reads, request in
                // Up to the default page on the loop; longer pages take the pool, which bounds the body.
                guard request.hasPlainIntegers(), request.integer("limit") ?? 100 <= loopPageLimit else { return nil }
                let limit = try Validation.pageLimit(request.integer("limit"))
                let after = request.string("after")
                return json(bytes: try reads.store.readHere(slot: request.loop) { db in
                    if let tag = reads.store.renderer?.tag, let body = try storedList(limit: limit, { item in
                        let page = try StoredRepresentations.vmPage(after: after, limit: limit, tag: tag, in: db, item)
                        reads.store.requestRendering(vms: page.unrendered)
                        return page
                    }) { return body }
                    let (page, next) = try ReadViews.vmRecords(after: after, limit: limit, in: db)
                    return try list(page, next: next) { item, body in try VMJSON.append(item.record, holder: item.holder, to: &body) }
                })
            }, ["limit", "after"])
        case "listBindings":
            return ({ reads, request in
                guard request.hasPlainIntegers(), request.integer("limit") ?? 100 <= loopPageLimit else { return nil }
                let limit = try Validation.pageLimit(request.integer("limit"))
                let vm = request.string("vm"), device = request.string("device"), after = request.string("after")
                return json(bytes: try reads.store.readHere(slot: request.loop) { db in
                    if let tag = reads.store.renderer?.tag, let body = try storedList(limit: limit, { item in
                        let page = try StoredRepresentations.bindingPage(vmID: vm, deviceAddress: device, after: after, limit: limit,
                                                                         tag: tag, in: db, item)
                        reads.store.requestRendering(bindings: page.unrendered)
                        return page
                    }) { return body }
                    let (page, next) = try ReadViews.bindingRecords(vm: vm, device: device, after: after, limit: limit, in: db)
                    return try list(page, next: next) { record, body in try BindingJSON.append(record, to: &body) }
                })
            }, ["limit", "after", "vm", "device"])
        default: return nil
        }
    }

    /// One resource's answer, in one snapshot: its stored representation
    /// (`StoredRepresentations`), else its JSON from the columns (`columns`: nil when it does
    /// not exist), asking for the representation when this build has not rendered it.
    private func one(_ resource: String, _ id: String, on request: LoopRequest,
                     stored lookup: ([UInt8], StoreTransaction) throws -> StoredRepresentations.Lookup, askRendering: () -> Void,
                     columns: (StoreTransaction) throws -> (json: [UInt8], resourceVersion: Int)?) throws -> HTTPResponse {
        let found = try store.readHere(slot: request.loop) { db -> (json: [UInt8], resourceVersion: Int)? in
            if let tag = store.renderer?.tag {
                switch try lookup(tag, db) {
                case let .found(json, resourceVersion): return (json, resourceVersion)
                case .missing: return nil
                case .unrendered: askRendering()
                case .columnsOnly: break
                }
            }
            return try columns(db)
        }
        guard let found else { throw APIError.missing(resource, id) }
        return Self.json(bytes: found.json, etag: etag(found.resourceVersion))
    }

    /// A list page written from stored representations, as `list` writes it; nil when one of
    /// them is not there (`page` answers incomplete), for the caller to read the columns.
    private static func storedList(limit: Int, _ page: ((UnsafeRawBufferPointer) throws -> Void) throws -> StoredRepresentations.Page)
        throws -> [UInt8]? {
        var body = Array(#"{"items":["#.utf8)
        body.reserveCapacity(limit * 640 + 64)
        var first = true
        let found = try page { json in
            if !first { body.append(UInt8(ascii: ",")) }
            first = false
            body.append(contentsOf: json)
        }
        guard found.complete else { return nil }
        return close(&body, next: found.next)
    }

    /// A list page as the generated types write it: the items, then the cursor when there is one.
    private static func list<Item>(_ items: ArraySlice<Item>, next: String?, item: (Item, inout [UInt8]) throws -> Void) throws -> [UInt8] {
        var body = Array(#"{"items":["#.utf8)
        body.reserveCapacity(items.count * 640 + 64)
        for (index, element) in items.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            try item(element, &body)
        }
        return close(&body, next: next)
    }

    /// Ends a list's items, then writes the cursor when there is one.
    private static func close(_ body: inout [UInt8], next: String?) -> [UInt8] {
        body.append(UInt8(ascii: "]"))
        if let next {
            body.append(contentsOf: #","nextCursor":"#.utf8)
            JSONBytes.string(next, &body)
        }
        body.append(UInt8(ascii: "}"))
        return body
    }

    /// A 200 with `body` as the generated code frames it.
    private static func json<T: Encodable>(_ body: T, etag: String? = nil) throws -> HTTPResponse {
        json(bytes: try CompactJSONEncoder.encode(body), etag: etag)
    }

    /// A 200 with JSON `bytes`, framed as the generated code frames it.
    private static func json(bytes: [UInt8], etag: String? = nil) -> HTTPResponse {
        var headers: [(name: String, value: String)] = []
        if let etag { headers.append(("ETag", etag)) }
        headers.append(("Content-Type", "application/json; charset=utf-8"))
        return HTTPResponse(status: 200, headers: headers, body: bytes)
    }

    /// The query's keys and values, when it is plain: no escapes (unless `decodingEscapes`, for
    /// values), no `+`, no key twice, only `allowed` keys.
    static func plainQuery(_ query: String?, allowed: Set<Substring>, decodingEscapes: Bool = false) -> [Substring: Substring]? {
        guard let query, !query.isEmpty else { return [:] }
        var items: [Substring: Substring] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) {
            guard let equals = pair.firstIndex(of: "=") else { return nil }
            let key = pair[..<equals], value = pair[pair.index(after: equals)...]
            guard allowed.contains(key), items[key] == nil, !value.utf8.contains(UInt8(ascii: "+")) else { return nil }
            if value.utf8.contains(UInt8(ascii: "%")) {
                guard decodingEscapes, let decoded = value.removingPercentEncoding else { return nil }
                items[key] = Substring(decoded)
            } else {
                items[key] = value
            }
        }
        return items
    }

    /// Whether `Accept` is absent or plainly admits JSON: every member a `type/subtype` with at
    /// most a numeric `q`, one of them JSON or a wildcard, none NDJSON. Anything else is the
    /// generated path's to judge (it refuses what it cannot parse).
    static func acceptsJSON(_ head: HTTPRequestHead) -> Bool {
        var sawAccept = false, admitsJSON = false
        for (name, value) in head.headers where name.utf8.count == 6 && name.lowercased() == "accept" {
            sawAccept = true
            for member in value.split(separator: ",", omittingEmptySubsequences: false) {
                let parts = member.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                let media = parts[0]
                let halves = media.split(separator: "/", omittingEmptySubsequences: false)
                // What the generated code refuses as malformed (`*/json`, a q outside 0...1) is its to answer.
                guard halves.count == 2, !halves[0].isEmpty, !halves[1].isEmpty, halves[0] != "*" || halves[1] == "*",
                      !media.contains("ndjson") else { return false }
                for parameter in parts.dropFirst() {
                    guard parameter.hasPrefix("q="), let quality = Double(parameter.dropFirst(2)), (0...1).contains(quality) else { return false }
                }
                if media == "application/json" || media == "*/*" || media == "application/*" { admitsJSON = true }
            }
        }
        return !sawAccept || admitsJSON
    }
}

extension LoopReads.LoopRequest {
    /// A path parameter without percent-escapes (escaped ones take the generated path).
    func plainPath(_ name: String) -> String? {
        guard let value = path[name], !value.utf8.contains(UInt8(ascii: "%")) else { return nil }
        return String(value)
    }

    /// A query value (the contract's checks have passed it).
    func string(_ key: Substring) -> String? { query[key].map(String.init) }

    /// A query value as an integer (the contract's checks have passed it).
    func integer(_ key: Substring) -> Int? { query[key].flatMap { Int($0) } }

    /// Whether the integer parameters `keys` are plain decimal numbers (`1e2` and the like take the generated path).
    func hasPlainIntegers(_ keys: [Substring] = ["limit"]) -> Bool { keys.allSatisfy { key in query[key].map { Int($0) != nil } ?? true } }
}
