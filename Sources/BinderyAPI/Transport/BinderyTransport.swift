import BinderyHTTP
import BinderyStore
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// swift-openapi-runtime's `ServerTransport` over BinderyHTTP: the generated handlers register
/// here, and BinderyHTTP hands every request to `respond(to:)`. Decoding failures thrown by the
/// generated code become 400 problems, never 500; every response carries `X-Request-Id`.
final class BinderyTransport: ServerTransport, HTTPHandler, @unchecked Sendable {
    typealias Handler = @Sendable (HTTPTypes.HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPTypes.HTTPResponse, HTTPBody?)

    private struct Route {
        let method: HTTPTypes.HTTPRequest.Method
        let template: PathTemplate
        let handler: Handler
    }

    private var routes: [Route] = []
    private let roles: @Sendable () -> RoleMap
    private let store: Store
    private let maxResponseBytes = 64 * 1024 * 1024

    /// A transport whose callers' roles come from `roles` (read per request, so a reload applies at once).
    init(store: Store, roles: @escaping @Sendable () -> RoleMap) {
        self.store = store
        self.roles = roles
    }

    func register(_ handler: @escaping Handler, method: HTTPTypes.HTTPRequest.Method, path: String) throws {
        routes.append(Route(method: method, template: PathTemplate(path), handler: handler))
    }

    func respond(to request: BinderyHTTP.HTTPRequest) async -> BinderyHTTP.HTTPResponse {
        let requestID = request.head.header("x-request-id").flatMap { $0.isEmpty || $0.utf8.count > 128 ? nil : $0 }
            ?? ResourceIDMaker.requestID()
        var response: BinderyHTTP.HTTPResponse
        if request.head.method == "POST", let key = request.head.header("idempotency-key") {
            response = await idempotent(request, key: key, requestID: requestID)
        } else {
            response = await route(request, requestID: requestID)
        }
        response.headers.append(("X-Request-Id", requestID))
        return response
    }

    /// Idempotency-Key on POST: the same key and body replay the first answer; a different
    /// body is 422; while the first is still running, 409. Keys are per caller identity.
    private func idempotent(_ request: BinderyHTTP.HTTPRequest, key: String, requestID: String) async -> BinderyHTTP.HTTPResponse {
        guard !key.isEmpty, key.utf8.count <= 128 else {
            var invalid = APIError(status: 422, type: "validation-failed", detail: "Idempotency-Key must be 1–128 characters")
            invalid.fields = [("/headers/Idempotency-Key", "1–128 characters")]
            return invalid.response
        }
        let identity = request.peer.identity
        let digest = SHA256.digest(Array((request.head.method + " " + request.head.target + "\n").utf8) + request.body)
        let claim: IdempotencyRepository.Claim
        do {
            claim = try await store.write { db in try IdempotencyRepository.claim(identity: identity, key: key, digest: digest, in: db) }
        } catch {
            return APIError.internalError("idempotency record: \(error)").response
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
            let response = await route(request, requestID: requestID)
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

    private func route(_ request: BinderyHTTP.HTTPRequest, requestID: String) async -> BinderyHTTP.HTTPResponse {
        let matching = routes.compactMap { route in route.template.match(request.head.path).map { (route, $0) } }
        guard !matching.isEmpty else { return APIError.notFound("no resource at \(request.head.path)").response }
        guard let method = HTTPTypes.HTTPRequest.Method(request.head.method),
              let (route, parameters) = matching.first(where: { $0.0.method == method }) else {
            var refusal = APIError.methodNotAllowed("\(request.head.method) is not allowed on \(request.head.path)").response
            refusal.headers.append(("Allow", matching.map(\.0.method.rawValue).joined(separator: ", ")))
            return refusal
        }
        var fields = HTTPFields()
        for (name, value) in request.head.headers {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        let target = request.head.query.map { "\(request.head.path)?\($0)" } ?? request.head.path
        let typed = HTTPTypes.HTTPRequest(method: method, scheme: "https", authority: request.head.header("host"), path: target,
                                          headerFields: fields)
        let body = request.body.isEmpty ? nil : HTTPBody(request.body)
        let context = RequestContext(peer: request.peer, role: roles().role(of: request.peer.identity), requestID: requestID)
        do {
            let (response, responseBody) = try await RequestContext.$current.withValue(context) {
                try await route.handler(typed, body, ServerRequestMetadata(pathParameters: parameters))
            }
            var bytes: [UInt8] = []
            if let responseBody { bytes = try await [UInt8](collecting: responseBody, upTo: maxResponseBytes) }
            // Framing and connection headers are the server's to write, once.
            let owned: Set<String> = ["content-length", "transfer-encoding", "connection", "date", "server"]
            // The generated code URI-encodes string header values (ETag: %221%22); ours never
            // contain a literal %, so decoding gives back exactly what the handler set.
            return BinderyHTTP.HTTPResponse(status: response.status.code,
                                            headers: response.headerFields.filter { !owned.contains($0.name.canonicalName) }
                                                .map { ($0.name.rawName, $0.value.removingPercentEncoding ?? $0.value) },
                                            body: bytes)
        } catch {
            return Self.problem(for: error).response
        }
    }

    /// Our own errors keep their problem; what the generated code threw while decoding is the
    /// client's fault (400); anything else is ours (500, naming the cause).
    static func problem(for error: any Error) -> APIError {
        if let api = error as? APIError { return api }
        if let server = error as? ServerError {
            if let api = server.underlyingError as? APIError { return api }
            if server.operationOutput == nil && server.operationInput == nil {
                return .badRequest("\(server.operationID): \(server.causeDescription): \(server.underlyingError)")
            }
            if server.operationOutput == nil, server.operationInput != nil {
                return .internalError("\(server.operationID) failed: \(server.underlyingError)")
            }
            return .internalError("\(server.operationID): \(server.causeDescription)")
        }
        return .internalError("\(error)")
    }
}

/// Ids for requests that came without `X-Request-Id`.
enum ResourceIDMaker {
    static func requestID() -> String {
        var generator = SystemRandomNumberGenerator()
        return "req-" + String(generator.next() as UInt64, radix: 16)
    }
}
