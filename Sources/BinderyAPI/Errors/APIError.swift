import BinderyHTTP
import Foundation

/// An error a handler throws to answer with an RFC 9457 problem: a status, a stable `type`,
/// a human `detail`, and for 422 each offending field as a JSON pointer.
struct APIError: Error, Sendable {
    /// The HTTP status.
    let status: Int
    /// The last segment of the problem type URI (`forbidden`, `validation-failed`, ...).
    let type: String
    /// A human sentence.
    let detail: String
    /// Offending fields (JSON pointer, what is wrong).
    var fields: [(pointer: String, detail: String)] = []
    /// `Retry-After` seconds, for 503.
    var retryAfterSeconds: Int?

    /// The base of every problem `type`.
    static let typeBase = "https://bindery.dev/problems/"

    /// The caller's identity has no role allowing the operation.
    static func forbidden(_ detail: String) -> APIError { APIError(status: 403, type: "forbidden", detail: detail) }
    /// The request could not be decoded.
    static func badRequest(_ detail: String) -> APIError { APIError(status: 400, type: "bad-request", detail: detail) }
    /// No such route.
    static func notFound(_ detail: String) -> APIError { APIError(status: 404, type: "not-found", detail: detail) }
    /// The route exists, the method does not.
    static func methodNotAllowed(_ detail: String) -> APIError { APIError(status: 405, type: "method-not-allowed", detail: detail) }
    /// Something broke on our side; the detail names what.
    static func internalError(_ detail: String) -> APIError { APIError(status: 500, type: "internal-error", detail: detail) }

    /// The problem document as an HTTP response.
    var response: BinderyHTTP.HTTPResponse {
        var members: [(String, Any)] = [("type", Self.typeBase + type), ("title", HTTPStatus.reason(status)), ("status", status), ("detail", detail)]
        if !fields.isEmpty { members.append(("errors", fields.map { ["pointer": $0.pointer, "detail": $0.detail] })) }
        let body = (try? JSONSerialization.data(withJSONObject: Dictionary(uniqueKeysWithValues: members), options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        var headers = [("Content-Type", "application/problem+json")]
        if let retryAfterSeconds { headers.append(("Retry-After", String(retryAfterSeconds))) }
        return BinderyHTTP.HTTPResponse(status: status, headers: headers, body: Array(body))
    }
}
