import BinderyStore
import OpenAPIRuntime

/// `GET /v1/audit` with `Accept: application/x-ndjson`: the whole selection, one event per line,
/// read from the database a page at a time only as the client takes it (the server asks for the
/// next page when the previous one has nearly left), so memory stays flat whatever the size.
/// Each line is the JSON of a page item with its keys sorted; `after` resumes after a seq.
struct AuditExport: AsyncSequence, Sendable {
    typealias Element = ArraySlice<UInt8>

    /// Where the events come from.
    let store: Store
    /// The selection; `after` is where the export starts.
    let query: AuditChain.Query
    /// Events per database read at most; fewer when events are large (see `Iterator`).
    static let maximumPage = 1000
    /// About how many bytes of events one database read brings into memory.
    static let pageBytes = 2 << 20
    /// About how many bytes one piece handed to the server holds.
    static let pieceBytes = 256 << 10

    func makeAsyncIterator() -> Iterator { Iterator(store: store, query: query) }

    /// Hands out pieces of about `pieceBytes`, reading a page when the last one is used up. The
    /// page size follows the size of the events seen, so memory stays flat for large events too.
    struct Iterator: AsyncIteratorProtocol {
        let store: Store
        var query: AuditChain.Query
        var pending: [AuditEvent] = []
        var pendingIndex = 0
        var pageSize = 100
        var isLastPage = false

        init(store: Store, query: AuditChain.Query) {
            self.store = store
            self.query = query
        }

        mutating func next() async throws -> ArraySlice<UInt8>? {
            var lines: [UInt8] = []
            lines.reserveCapacity(AuditExport.pieceBytes + 16 * 1024)
            while lines.count < AuditExport.pieceBytes {
                if pendingIndex == pending.count {
                    guard !isLastPage, try await readPage() else { break }
                }
                AuditExport.appendLine(for: pending[pendingIndex], to: &lines)
                pendingIndex += 1
            }
            return lines.isEmpty ? nil : lines[...]
        }

        /// The next page after the last event read; false when there is none.
        private mutating func readPage() async throws -> Bool {
            var page = query
            page.limit = pageSize
            pending = try await store.read { [page] db in try AuditChain.events(page, in: db) }
            pendingIndex = 0
            guard let last = pending.last else { return false }
            isLastPage = pending.count < pageSize
            query.after = last.seq
            let bytes = pending.reduce(0) { $0 + AuditExport.estimatedSize(of: $1) }
            pageSize = Swift.min(AuditExport.maximumPage, Swift.max(16, AuditExport.pageBytes * pending.count / Swift.max(bytes, 1)))
            return true
        }
    }

    /// About how many bytes `event` takes as a line (and in memory).
    static func estimatedSize(of event: AuditEvent) -> Int {
        let record = event.record
        return 400 + record.action.utf8.count + record.actor.identity.utf8.count + (record.before?.utf8.count ?? 0)
            + (record.after?.utf8.count ?? 0) + (record.resourceID?.utf8.count ?? 0) + (record.requestID?.utf8.count ?? 0)
    }

    /// Appends `event` as one NDJSON line: the fields of the `AuditEvent` schema, keys sorted,
    /// absent optionals left out, as `JSONEncoder` with `.sortedKeys` writes them.
    static func appendLine(for event: AuditEvent, to out: inout [UInt8]) {
        let record = event.record
        var line = "{\"action\":" + JSONText.string(record.action)
        line += ",\"actor\":{\"identity\":" + JSONText.string(record.actor.identity)
        if let address = record.actor.remoteAddress { line += ",\"remoteAddress\":" + JSONText.string(address) }
        if let role = record.actor.role { line += ",\"role\":" + JSONText.string(role) }
        line += "}"
        if let after = record.after { line += ",\"after\":" + JSONText.string(after) }
        if let before = record.before { line += ",\"before\":" + JSONText.string(before) }
        line += ",\"hash\":\"" + event.hash.hexString + "\""
        if let status = record.httpStatus { line += ",\"httpStatus\":" + String(status) }
        line += ",\"outcome\":\"" + record.outcome.rawValue + "\""
        line += ",\"prevHash\":\"" + event.previousHash.hexString + "\""
        if let requestID = record.requestID { line += ",\"requestId\":" + JSONText.string(requestID) }
        if let resourceID = record.resourceID { line += ",\"resourceId\":" + JSONText.string(resourceID) }
        line += ",\"resourceType\":" + JSONText.string(record.resourceType)
        line += ",\"seq\":" + String(event.seq) + ",\"time\":" + JSONText.string(event.time) + "}\n"
        out.append(contentsOf: line.utf8)
    }
}
