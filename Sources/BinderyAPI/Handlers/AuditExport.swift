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
    /// Events per database read at most.
    static let maximumPage = 5000
    /// About how many bytes one piece (one database read) holds.
    static let pieceBytes = 256 << 10

    func makeAsyncIterator() -> Iterator { Iterator(store: store, query: query) }

    /// Reads the next piece at each `next()`: lines written from SQLite's row buffers
    /// (`AuditNDJSON`) until about `pieceBytes`, resuming after the last seq sent.
    struct Iterator: AsyncIteratorProtocol {
        let store: Store
        var query: AuditChain.Query
        var isFinished = false

        mutating func next() async throws -> ArraySlice<UInt8>? {
            guard !isFinished else { return nil }
            var page = query
            page.limit = AuditExport.maximumPage
            let lines = try await store.read { [page] db in try AuditNDJSON.lines(page, maxBytes: AuditExport.pieceBytes, in: db) }
            guard let last = lines.lastSeq else {
                isFinished = true
                return nil
            }
            query.after = last
            isFinished = lines.events < page.limit && lines.bytes.count < AuditExport.pieceBytes
            return lines.bytes[...]
        }
    }
}
