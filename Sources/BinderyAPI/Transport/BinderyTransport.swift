import BinderyHTTP
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
    private let maxResponseBytes = 64 * 1024 * 1024

    /// A transport whose callers' roles come from `roles` (read per request, so a reload applies at once).
    init(roles: @escaping @Sendable () -> RoleMap) { self.roles = roles }

    func register(_ handler: @escaping Handler, method: HTTPTypes.HTTPRequest.Method, path: String) throws {
        routes.append(Route(method: method, template: PathTemplate(path), handler: handler))
    }

    func respond(to request: BinderyHTTP.HTTPRequest) async -> BinderyHTTP.HTTPResponse {
        let requestID = request.head.header("x-request-id").flatMap { $0.isEmpty || $0.utf8.count > 128 ? nil : $0 }
            ?? ResourceIDMaker.requestID()
        var response = await route(request, requestID: requestID)
        response.headers.append(("X-Request-Id", requestID))
        return response
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
            return BinderyHTTP.HTTPResponse(status: response.status.code,
                                            headers: response.headerFields.filter { !owned.contains($0.name.canonicalName) }
                                                .map { ($0.name.rawName, $0.value) },
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
