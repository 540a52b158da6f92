import BinderyHTTP

/// The creates, handed to their handler without the generated server code: the body the
/// contract's checks parsed is read into the generated input type (`VMCreate(checked:)`,
/// `JSONValueDecoder` for bindings; the generated path serializes it and parses it again with
/// `JSONDecoder`), the handler's own create runs exactly as it does there, and the stored
/// record is written as JSON by `VMJSON` and `BindingJSON`, as the reads on the event loop
/// write it. Same status, headers and body as the generated path (`DirectWritesTests`). A
/// body not read that way, or an Accept that is not plainly JSON, is left to the generated
/// path before anything runs.
struct DirectWrites: Sendable {
    /// One write: the checked request in; nil when the body is left to the generated path,
    /// else the run that hands the decoded input to the handler and writes its answer.
    typealias Write = @Sendable (DirectRequest) -> Run?

    /// A decoded write, ready to run: its errors are the handler's.
    typealias Run = @Sendable (APIHandler) async throws -> HTTPResponse

    /// What a write gets from the request.
    struct DirectRequest: Sendable {
        /// The body as the contract's checks parsed it (integral numbers plain).
        let body: JSONValue
        /// The request's head.
        let head: HTTPRequestHead
    }

    /// The direct answer for `operationID`, if it has one.
    static func write(for operationID: String) -> Write? {
        switch operationID {
        case "createVM":
            return { request in
                // Takes exactly what JSONDecoder takes (JSONValueDecoderTests): a refusal is the generated path's to answer.
                guard let body = Components.Schemas.VMCreate(checked: request.body) else { return nil }
                return { handler in
                    let record = try await handler.createdVM(body)
                    return json(201, etag: etag(record.meta.resourceVersion), location: "/v1/vms/\(record.id)",
                                body: try VMJSON.bytes(record, holder: nil))
                }
            }
        case "createBinding":
            return { request in
                guard let body = try? JSONValueDecoder.decode(Components.Schemas.BindingCreate.self, from: request.body) else { return nil }
                return { handler in
                    let record = try await handler.createdBinding(body)
                    return json(202, etag: etag(record.meta.resourceVersion), location: "/v1/bindings/\(record.id)",
                                body: try BindingJSON.bytes(record))
                }
            }
        default:
            return nil
        }
    }

    /// A created resource's answer, with the generated path's headers in its order.
    private static func json(_ status: Int, etag: String, location: String, body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("ETag", etag), ("Location", location), ("Content-Type", "application/json; charset=utf-8")],
                     body: body)
    }
}
