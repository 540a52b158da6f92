import BinderyHTTP
import BinderyStore
import Foundation
import HTTPTypes
import OpenAPIRuntime
import Synchronization

/// swift-openapi-runtime's `ServerTransport` over BinderyHTTP: the generated handlers register
/// here, and BinderyHTTP hands every request to `respond(to:)`. Each request goes, in order:
/// route (404/405 with `Allow`) → authorization (403, audited) → the contract's checks (400/422)
/// → `Idempotency-Key` → the handler. Nothing is stored for a caller before it is authorized.
/// Every response carries `X-Request-Id`.
final class BinderyTransport: ServerTransport, HTTPHandler, @unchecked Sendable {
    typealias Handler = @Sendable (HTTPTypes.HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPTypes.HTTPResponse, HTTPBody?)

    private struct Route {
        let method: HTTPTypes.HTTPRequest.Method
        let template: PathTemplate
        let operation: Contract.Operation
        let handler: Handler
        /// What the caller's role must allow (nil: admin only).
        let permission: Permission?
        /// The event-loop answer, for read-only operations that have one.
        let loopRead: (read: LoopReads.Read, queryKeys: Set<Substring>)?
        /// The reader-pool answer, for longer reads that skip the generated code's encoder.
        let poolRead: (read: LoopReads.PoolRead, queryKeys: Set<Substring>)?
        /// The direct answer, for writes whose checked body goes to the handler as it is.
        let directWrite: DirectWrites.Write?
    }

    /// Where a request goes: a route and its path parameters, or the 404 or 405 it gets.
    private enum Routing {
        case found(Route, [String: Substring])
        case notFound
        case methodNotAllowed([String])
    }

    /// Routes by `PathTemplate.bucket`, in registration order: a request looks in two short lists.
    private var buckets: [String: [Route]] = [:]
    private let contract: Contract
    private let grants: @Sendable () -> RoleMap
    /// The grants each event loop's reads use until it waits again (`grants(onLoop:)`).
    private let loopGrants = Mutex<[Int: RoleMap]>([:])
    private let denials: DenialRecorder
    private let store: Store
    private let maxResponseBytes = 64 * 1024 * 1024
    /// The reads answered without the generated code.
    private let loopReads: LoopReads
    /// Answer read-only operations on the event loop, and audit pages on the reader pool, with
    /// `LoopReads`; off, every request takes the generated path (tests compare the two).
    var answersReadsDirectly = true
    /// Hand the creates' checked bodies to `handler` directly (`DirectWrites`); off, every
    /// write takes the generated path (tests compare the two).
    var answersWritesDirectly = true
    /// The handlers the generated code registers, for `DirectWrites`; nil: no direct writes.
    var handler: APIHandler?
    /// Request counts and latencies for the operations answered on the loop or directly (the
    /// generated path counts its own in `MetricsMiddleware`).
    var metrics: RequestMetrics?

    /// A transport whose callers' roles come from `grants` (read per request, or for the reads
    /// answered on an event loop once per wakeup of that loop, so a change applies from the next
    /// request, or the loop's next wakeup) and whose requests are checked against `contract`.
    init(store: Store, contract: Contract, grants: @escaping @Sendable () -> RoleMap) {
        self.store = store
        self.contract = contract
        self.grants = grants
        denials = DenialRecorder(store: store)
        loopReads = LoopReads(store: store)
    }

    func register(_ handler: @escaping Handler, method: HTTPTypes.HTTPRequest.Method, path: String) throws {
        guard let operation = contract.operation(method: method.rawValue, path: path) else {
            throw ContractError("the generated code registers \(method.rawValue) \(path), which openapi.yaml does not declare")
        }
        let route = Route(method: method, template: PathTemplate(path), operation: operation, handler: handler,
                          permission: Permission.required(by: operation.id), loopRead: LoopReads.read(for: operation.id),
                          poolRead: LoopReads.poolRead(for: operation.id), directWrite: DirectWrites.write(for: operation.id))
        buckets[route.template.bucket, default: []].append(route)
    }

    /// The route for a request: the first whose template and method match.
    private func route(_ head: HTTPRequestHead) -> Routing {
        var allowed: [String] = []
        let (named, counted) = PathTemplate.buckets(of: head.path)
        for bucket in [named, counted] {
            for route in buckets[bucket] ?? [] {
                guard let parameters = route.template.match(head.path) else { continue }
                if route.method.rawValue == head.method { return .found(route, parameters) }
                allowed.append(route.method.rawValue)
            }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }

    /// What the loop's reads kept for the requests of one wakeup ends here: the snapshot
    /// (`Store.readHere`) and the grants (`loopGrants`).
    func loopWillWait(_ loop: Int) {
        loopGrants.withLock { $0[loop] = nil }
        store.endHeldRead(slot: loop)
    }

    /// The grants for the reads of event loop `loop`: asked of `grants` at the loop's first
    /// read after it woke, then kept until it waits again. A `stat` of the roles file per
    /// request was 6% of a GET's CPU; a change now applies from the next wakeup of each loop
    /// (a batch of requests lasts tens of microseconds). Writes, and every request on the
    /// generated path, still ask per request.
    private func grants(onLoop loop: Int) -> RoleMap {
        if let kept = loopGrants.withLock({ $0[loop] }) { return kept }
        let current = grants()
        loopGrants.withLock { $0[loop] = current }
        return current
    }

    /// Read-only operations, answered here on the event loop when the request is plain and
    /// allowed; nil sends it down the generated path (`respond`), which also records denials.
    func respondImmediately(to request: BinderyHTTP.HTTPRequest) -> BinderyHTTP.HTTPResponse? {
        guard answersReadsDirectly, request.head.method == "GET", case let .found(route, parameters) = route(request.head),
              let loopRead = route.loopRead, route.permission?.allows(grants(onLoop: request.loop).role(of: request.peer)) ?? false,
              LoopReads.acceptsJSON(request.head),
              let query = LoopReads.plainQuery(request.head.query, allowed: loopRead.queryKeys) else { return nil }
        let started = ContinuousClock.now
        var response: BinderyHTTP.HTTPResponse
        do {
            try route.operation.check(request, pathParameters: parameters)
            guard let answer = try loopRead.read(loopReads, .init(path: parameters, query: query, loop: request.loop)) else { return nil }
            response = answer
        } catch {
            response = Self.problem(for: error).response
        }
        metrics?.observe(operation: route.operation.id, status: response.status, seconds: MetricsMiddleware.seconds(since: started))
        response.headers.append(("X-Request-Id", Self.requestID(of: request)))
        return response
    }

    /// The caller's `X-Request-Id` when usable, else a new one.
    private static func requestID(of request: BinderyHTTP.HTTPRequest) -> String {
        request.head.header("x-request-id").flatMap { $0.isEmpty || $0.utf8.count > 128 ? nil : $0 } ?? ResourceIDMaker.requestID()
    }

    func respond(to request: BinderyHTTP.HTTPRequest) async -> BinderyHTTP.HTTPResponse {
        let requestID = Self.requestID(of: request)
        var response = await admit(request, requestID: requestID)
        response.headers.append(("X-Request-Id", requestID))
        return response
    }

    private func admit(_ request: BinderyHTTP.HTTPRequest, requestID: String) async -> BinderyHTTP.HTTPResponse {
        let route: Route, parameters: [String: Substring]
        switch self.route(request.head) {
        case let .found(found, foundParameters): (route, parameters) = (found, foundParameters)
        case .notFound: return APIError.notFound("no resource at \(request.head.path)").response
        case var .methodNotAllowed(allowed):
            var refusal = APIError.methodNotAllowed("\(request.head.method) is not allowed on \(request.head.path)").response
            if allowed.contains("GET") && !allowed.contains("HEAD") { allowed.append("HEAD") }
            refusal.headers.append(("Allow", allowed.joined(separator: ", ")))
            return refusal
        }
        let role = grants().role(of: request.peer)
        let context = RequestContext(peer: request.peer, role: role, requestID: requestID)
        guard route.permission?.allows(role) ?? (role == .admin) else {
            await denials.record(context.actor, requestID: requestID, operation: route.operation.id, path: request.head.path)
            return APIError.forbidden(role.map { "role \($0.rawValue) may not \(route.operation.id)" }
                                      ?? "identity \(request.peer.identity) has no role").response
        }
        let checked: JSONValue?
        do {
            checked = try route.operation.check(request, pathParameters: parameters)
        } catch {
            return error.response
        }
        if let refusal = AcceptCheck.refusal(of: request.head, operationID: route.operation.id,
                                             mediaTypes: route.operation.successMediaTypes) {
            return refusal.response
        }
        if answersReadsDirectly, request.head.method == "GET", let poolRead = route.poolRead, LoopReads.acceptsJSON(request.head),
           let query = LoopReads.plainQuery(request.head.query, allowed: poolRead.queryKeys, decodingEscapes: true) {
            let started = ContinuousClock.now
            var answer: BinderyHTTP.HTTPResponse?
            do {
                answer = try await poolRead.read(loopReads, .init(path: parameters, query: query, loop: request.loop))
            } catch {
                answer = Self.problem(for: error).response
            }
            if let answer {
                metrics?.observe(operation: route.operation.id, status: answer.status, seconds: MetricsMiddleware.seconds(since: started))
                return answer
            }
        }
        if request.head.method == "POST", let key = request.head.header("idempotency-key") {
            return await idempotent(request, key: key, route: route, parameters: parameters, context: context, checked: checked)
        }
        return await dispatch(request, route: route, parameters: parameters, context: context, checked: checked)
    }

    /// Idempotency-Key on POST: the same key and body replay the first answer; a different
    /// body is 422; while the first is still running, 409. Keys are per caller identity.
    private func idempotent(_ request: BinderyHTTP.HTTPRequest, key: String, route: Route, parameters: [String: Substring],
                            context: RequestContext, checked: JSONValue?) async -> BinderyHTTP.HTTPResponse {
        let identity = request.peer.identity
        // The checked document, so bodies that differ only in layout are the same request.
        let digest = SHA256.digest(Array((request.head.method + " " + request.head.target + "\n").utf8) + (checked?.serialized ?? request.body))
        let claim: IdempotencyRepository.Claim
        do {
            claim = try await store.write { db in try IdempotencyRepository.claim(identity: identity, key: key, digest: digest, in: db) }
        } catch {
            return Self.problem(for: error).response
        }
        switch claim {
        case let .replay(status, headers, body):
            var replay = BinderyHTTP.HTTPResponse(status: status, headers: headers.map { ($0.key, $0.value) }, body: body)
            replay.headers.append(("Idempotent-Replayed", "true"))
            return replay
        case .mismatch:
            return APIError(status: 422, type: "idempotency-key-reused",
                            detail: "Idempotency-Key \(key) was used with a different request body").response
        case .inFlight:
            return APIError.conflict("idempotency-key-in-flight", "the first request with Idempotency-Key \(key) is still running").response
        case .proceed:
            let response = await dispatch(request, route: route, parameters: parameters, context: context, checked: checked)
            let headers = Dictionary(response.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
            _ = try? await store.write { db in
                if response.status >= 500 {
                    try IdempotencyRepository.release(identity: identity, key: key, in: db)
                } else {
                    try IdempotencyRepository.complete(identity: identity, key: key, status: response.status, headers: headers,
                                                       body: response.body, in: db)
                }
            }
            return response
        }
    }

    /// Runs the route's handler: directly for a write `DirectWrites` decodes, else through the generated code.
    private func dispatch(_ request: BinderyHTTP.HTTPRequest, route: Route, parameters: [String: Substring],
                          context: RequestContext, checked: JSONValue?) async -> BinderyHTTP.HTTPResponse {
        if answersWritesDirectly, let handler, let checked, let write = route.directWrite, LoopReads.acceptsJSON(request.head),
           let run = write(.init(body: checked, head: request.head)) {
            return await direct(run, handler: handler, operationID: route.operation.id, context: context)
        }
        var fields = HTTPFields()
        for (name, value) in request.head.headers {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        let target = request.head.query.map { "\(request.head.path)?\($0)" } ?? request.head.path
        let typed = HTTPTypes.HTTPRequest(method: route.method, scheme: "https", authority: request.head.header("host"), path: target,
                                          headerFields: fields)
        // The handler decodes the document that was checked, byte for byte.
        let document = checked?.serialized ?? request.body
        let body = document.isEmpty ? nil : HTTPBody(document)
        do {
            let (response, responseBody) = try await RequestContext.$current.withValue(context) {
                try await route.handler(typed, body, ServerRequestMetadata(pathParameters: parameters))
            }
            var bytes: [UInt8] = []
            var stream: HTTPBodyStream?
            if let responseBody {
                switch responseBody.length {
                // A body of unknown length (an export) is streamed, pulled as the client reads.
                case .unknown: stream = Self.stream(of: responseBody)
                case .known: bytes = try await [UInt8](collecting: responseBody, upTo: maxResponseBytes)
                }
            }
            // Framing and connection headers are the server's to write, once.
            let owned: Set<String> = ["content-length", "transfer-encoding", "connection", "date", "server"]
            // The generated code URI-encodes string header values (ETag: %221%22); ours never
            // contain a literal %, so decoding gives back exactly what the handler set.
            return BinderyHTTP.HTTPResponse(status: response.status.code,
                                            headers: response.headerFields.filter { !owned.contains($0.name.canonicalName) }
                                                .map { ($0.name.rawName, $0.value.removingPercentEncoding ?? $0.value) },
                                            body: bytes, stream: stream)
        } catch {
            return Self.problem(for: error).response
        }
    }

    /// A decoded write run on `handler`, counted as `MetricsMiddleware` counts the generated
    /// path's, its errors answered as the generated path answers them.
    private func direct(_ run: DirectWrites.Run, handler: APIHandler, operationID: String, context: RequestContext) async -> BinderyHTTP.HTTPResponse {
        let started = ContinuousClock.now
        metrics?.started(operationID)
        defer { metrics?.finished(operationID) }
        let response: BinderyHTTP.HTTPResponse
        do {
            response = try await RequestContext.$current.withValue(context) { try await run(handler) }
        } catch {
            response = Self.problem(forHandlerError: error, operationID: operationID).response
        }
        metrics?.observe(operation: operationID, status: response.status, seconds: MetricsMiddleware.seconds(since: started))
        return response
    }

    /// What the generated path answers when the handler of `operationID` throws `error` (it
    /// wraps it in a `ServerError` that has the operation's input and no output).
    static func problem(forHandlerError error: any Error, operationID: String) -> APIError {
        if let api = error as? APIError { return api }
        return StoreAvailability.problem(for: error) ?? .internalError("\(operationID) failed")
    }

    /// The server pulls `body` a piece at a time; one task pulls, so the iterator is never shared.
    private static func stream(of body: HTTPBody) -> HTTPBodyStream {
        final class Pull: @unchecked Sendable {
            var iterator: HTTPBody.AsyncIterator
            init(_ body: HTTPBody) { iterator = body.makeAsyncIterator() }
        }
        let pull = Pull(body)
        return HTTPBodyStream { try await pull.iterator.next().map(Array.init) }
    }

    /// Our own errors keep their problem. What the generated code threw while decoding is the
    /// client's fault (400) and is told in a plain sentence, never as a decoder's dump; the
    /// contract's checks have already named any field by its pointer. A store that cannot
    /// write (full disk, I/O error, locked) is 503; anything else is ours (500), logged, not leaked.
    static func problem(for error: any Error) -> APIError {
        if let api = error as? APIError { return api }
        if let server = error as? ServerError {
            if let api = server.underlyingError as? APIError { return api }
            if server.operationOutput == nil {
                if let unavailable = StoreAvailability.problem(for: server.underlyingError) { return unavailable }
                if server.operationInput == nil { return .badRequest("the request does not match the API contract for \(server.operationID)") }
                return .internalError("\(server.operationID) failed")
            }
            return .internalError("\(server.operationID) failed")
        }
        if let unavailable = StoreAvailability.problem(for: error) { return unavailable }
        return .internalError("the request failed on the server")
    }
}
