import BinderyHTTP
import Foundation
import HTTPTypes
@_spi(Generated) import OpenAPIRuntime

/// Whether a request's `Accept` admits a media type its operation answers with, judged before
/// the handler runs. The generated code judges it only when it serializes the answer, after
/// the handler: a create with `Accept: text/plain` stored its VM, then answered 500. This asks
/// the runtime's own `validateAcceptIfPresent` (what the generated serializers call) about each
/// success media type of the operation, so the two never disagree on what passes.
enum AcceptCheck {
    private static let converter = Converter(configuration: Configuration())

    /// Nil when the request may go on (no Accept, or one admitting `mediaTypes`); else the
    /// problem to answer: 400 for a member that is no media range, 406 when none is admitted.
    static func refusal(of head: HTTPRequestHead, operationID: String, mediaTypes: [String]) -> APIError? {
        var fields = HTTPFields()
        for (name, value) in head.headers where name.utf8.count == 6 && name.lowercased() == "accept" {
            fields.append(HTTPField(name: .accept, value: value))
        }
        guard let accept = fields[.accept], !mediaTypes.isEmpty else { return nil }
        for type in mediaTypes where (try? converter.validateAcceptIfPresent(type, in: fields)) != nil { return nil }
        for member in accept.split(separator: ",") {
            let range = member.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if OpenAPIMIMEType(range) == nil {
                return .badRequest("the Accept member \"\(range.prefix(64))\" is not a media range (type/subtype)")
            }
        }
        return APIError(status: 406, type: "not-acceptable",
                        detail: "Accept admits none of \(mediaTypes.joined(separator: ", ")), the media types \(operationID) answers with")
    }
}
