import BinderyStore
import Foundation
import OpenAPIRuntime

extension APIHandler {
    static func schema(_ event: AuditEvent) -> Components.Schemas.AuditEvent {
        let record = event.record
        return Components.Schemas.AuditEvent(
            seq: Int64(event.seq), time: event.time,
            actor: .init(identity: record.actor.identity, role: record.actor.role, remoteAddress: record.actor.remoteAddress),
            requestId: record.requestID, action: record.action, resourceType: record.resourceType, resourceId: record.resourceID,
            outcome: .init(rawValue: record.outcome.rawValue) ?? .failed, httpStatus: record.httpStatus,
            before: record.before, after: record.after, prevHash: event.previousHash.hexString, hash: event.hash.hexString)
    }

    func listAuditEvents(_ input: Operations.listAuditEvents.Input) async throws -> Operations.listAuditEvents.Output {
        let q = input.query
        let limit = try Validation.pageLimit(q.limit)
        let query = try Self.auditQuery(actor: q.actor, action: q.action, resourceType: q.resourceType, resourceID: q.resourceId,
                                        outcome: q.outcome?.rawValue, since: q.since, until: q.until, after: q.after)
        if Self.wantsNDJSON(input.headers.accept.map { ($0.contentType.rawValue, $0.quality.doubleValue) }) {
            return .ok(.init(body: .application_x_hyphen_ndjson(
                HTTPBody(AuditExport(store: store, query: query), length: .unknown, iterationBehavior: .single))))
        }
        return .ok(.init(body: .json(try await store.read { db in try Self.auditPage(query, limit: limit, in: db) })))
    }

    /// Whether a listing answers with the NDJSON export: only when named in Accept, and either
    /// JSON is not admitted at all or NDJSON is asked for above it. No Accept header, or `*/*`,
    /// gets a JSON page, never the whole history. "Admitted" is the generated serializer's rule
    /// (`validateAcceptIfPresent`: the exact type, `application/*` or `*/*`, whatever the q), so
    /// the type chosen is one it writes; `AcceptCheck` has refused an Accept admitting neither.
    static func wantsNDJSON(_ accept: [(range: String, quality: Double)]) -> Bool {
        func admits(_ range: String, _ type: String) -> Bool {
            let range = range.lowercased()
            return range == type || range == "application/*" || range == "*/*"
        }
        let named = accept.filter { $0.range.lowercased() == "application/x-ndjson" }.map(\.quality)
        guard let ndjson = named.max() else { return false }
        let json = accept.filter { admits($0.range, "application/json") }.map(\.quality)
        return json.isEmpty || ndjson > json.max()!
    }

    /// The store's query for the documented filters (the contract's checks have passed them).
    static func auditQuery(actor: String?, action: String?, resourceType: String?, resourceID: String?, outcome: String?,
                           since: Date?, until: Date?, after: Int64?) throws -> AuditChain.Query {
        var validation = Validation()
        validation.check((after ?? 0) >= 0, "/after", "a seq, 0 or more")
        try validation.throwIfInvalid()
        var query = AuditChain.Query()
        query.actor = actor
        query.action = action
        query.resourceType = resourceType
        query.resourceID = resourceID
        query.outcome = outcome.flatMap(AuditOutcome.init(rawValue:))
        query.since = since.map { Timestamp.format($0) }
        query.until = until.map { Timestamp.format($0) }
        query.after = Int(after ?? 0)
        return query
    }

    /// A page of up to `limit` events of `query`, with the cursor to the next.
    static func auditPage(_ query: AuditChain.Query, limit: Int, in db: StoreTransaction) throws -> Components.Schemas.AuditPage {
        var query = query
        query.limit = limit + 1
        let events = try AuditChain.events(query, in: db)
        let page = events.prefix(limit)
        return .init(items: page.map(schema), nextCursor: events.count > limit ? page.last.map { Int64($0.seq) } : nil)
    }

    func verifyAudit(_ input: Operations.verifyAudit.Input) async throws -> Operations.verifyAudit.Output {
        let trustedKey = signingKey?.publicKey
        // Two reader connections hash the two halves of the chain at once, off the cooperative pool.
        let pool = store.pool
        let result = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try AuditChain.verify(reading: pool, trustedKey: trustedKey) })
            }
        }
        return .ok(.init(body: .json(.init(valid: result.isValid, events: Int64(result.events), head: result.head,
                                            firstBrokenSeq: result.firstBrokenSeq.map(Int64.init), reason: result.reason,
                                            checkpoints: Int64(result.checkpoints)))))
    }

    private static func schema(_ checkpoint: AuditCheckpoint) -> Components.Schemas.AuditCheckpoint {
        .init(seq: Int64(checkpoint.seq), headHash: checkpoint.headHash.hexString, time: checkpoint.time,
              publicKey: checkpoint.publicKey.hexString, signature: checkpoint.signature.hexString)
    }

    func listAuditCheckpoints(_ input: Operations.listAuditCheckpoints.Input) async throws -> Operations.listAuditCheckpoints.Output {
        let limit = try Validation.pageLimit(input.query.limit)
        let after = Int(input.query.after ?? 0)
        let checkpoints = try await store.read { db in try AuditCheckpoints.list(after: after, limit: limit + 1, in: db) }
        let page = checkpoints.prefix(limit)
        return .ok(.init(body: .json(.init(items: page.map(Self.schema),
                                            nextCursor: checkpoints.count > limit ? page.last.map { Int64($0.seq) } : nil))))
    }

    func createAuditCheckpoint(_ input: Operations.createAuditCheckpoint.Input) async throws -> Operations.createAuditCheckpoint.Output {
        guard let key = signingKey else { throw APIError.conflict("no-signing-key", "this server has no audit signing key") }
        guard let checkpoint = try await store.write({ db in try AuditCheckpoints.create(with: key, in: db) }) else {
            throw APIError.conflict("empty-audit-history", "the audit history is empty: there is no head to sign")
        }
        return .ok(.init(body: .json(Self.schema(checkpoint))))
    }

    func watchEvents(_ input: Operations.watchEvents.Input) async throws -> Operations.watchEvents.Output {
        let after = Int(input.query.after), timeout = input.query.timeoutSeconds ?? 30, limit = input.query.limit ?? 100
        var query = AuditChain.Query()
        query.after = after
        query.limit = limit
        query.excludedOutcomes = [.denied]
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            let events = try await store.read { [query] db in try AuditChain.events(query, in: db) }
            let remaining = deadline - ContinuousClock.now
            // A cancelled task means the client is gone: stop waiting, nobody reads the answer.
            if !events.isEmpty || remaining <= .zero || Task.isCancelled {
                return .ok(.init(body: .json(.init(items: events.map(Self.change), nextCursor: Int64(events.last?.seq ?? after)))))
            }
            await store.writer.committed.wait(timeout: remaining)
        }
    }

    /// What the change feed shows of an audit event: which resource changed, how, and when.
    /// No actor, address, before/after or chain fields.
    private static func change(_ event: AuditEvent) -> Components.Schemas.ChangeEvent {
        let record = event.record
        return Components.Schemas.ChangeEvent(
            seq: Int64(event.seq), time: event.time, action: record.action, resourceType: record.resourceType,
            resourceId: record.resourceID, outcome: record.outcome == .failed ? .failed : .success,
            resourceVersion: record.after.flatMap(resourceVersion(in:)))
    }

    /// `resourceVersion` from a resource's JSON, without decoding the rest.
    private static func resourceVersion(in json: String) -> Int64? {
        guard let range = json.range(of: "\"resourceVersion\":") else { return nil }
        return Int64(json[range.upperBound...].prefix { $0.isNumber })
    }
}
