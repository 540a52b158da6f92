import BinderyStore
import HTTPTypes
import OpenAPIRuntime

/// Checks the caller's role against what the operation needs, before anything else runs.
/// A refusal is a 403 problem and an audit event with outcome `denied`.
struct AuthorizationMiddleware: ServerMiddleware {
    let store: Store

    func intercept(_ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
                   next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?))
        async throws -> (HTTPResponse, HTTPBody?) {
        guard let context = RequestContext.current else { throw APIError.internalError("no request context for \(operationID)") }
        let permission = Permission.required(by: operationID)
        let allowed = permission?.allows(context.role) ?? (context.role == .admin)
        guard allowed else {
            let actor = context.actor, requestID = context.requestID, path = request.path ?? ""
            _ = try await store.write { db in
                try AuditChain.append(AuditRecord(actor: actor, requestID: requestID, action: operationID, resourceType: "api",
                                                  resourceID: path, outcome: .denied, httpStatus: 403), in: db)
            }
            throw APIError.forbidden(context.role == nil
                ? "identity \(context.peer.identity) has no role"
                : "role \(context.role!.rawValue) may not \(operationID)")
        }
        return try await next(request, body, metadata)
    }
}
