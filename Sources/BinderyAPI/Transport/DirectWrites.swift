import BinderyHTTP

/// The creates, handed to their handler without the generated server code: the body the
/// contract's checks parsed is decoded with `JSONValueDecoder` (the generated path serializes
/// it and parses it again with `JSONDecoder`), the handler runs exactly as it does there, and
/// its answer is written with `CompactJSONEncoder`. Same status, headers and body as the
/// generated path (`DirectWritesTests`). A body the decoder does not take, or an Accept that is
/// not plainly JSON, is left to the generated path before anything runs.
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
                guard let body = try? JSONValueDecoder.decode(Components.Schemas.VMCreate.self, from: request.body) else { return nil }
                let input = Operations.createVM.Input(headers: .init(Idempotency_hyphen_Key: request.head.header("idempotency-key")), body: .json(body))
                return { handler in
                    guard case let .created(created) = try await handler.createVM(input) else { throw unexpected("createVM") }
                    switch created.body {
                    case let .json(vm): return try json(201, [("ETag", created.headers.ETag), ("Location", created.headers.Location)], vm)
                    }
                }
            }
        case "createBinding":
            return { request in
                guard let body = try? JSONValueDecoder.decode(Components.Schemas.BindingCreate.self, from: request.body) else { return nil }
                let input = Operations.createBinding.Input(headers: .init(Idempotency_hyphen_Key: request.head.header("idempotency-key")),
                                                           body: .json(body))
                return { handler in
                    guard case let .accepted(accepted) = try await handler.createBinding(input) else { throw unexpected("createBinding") }
                    switch accepted.body {
                    case let .json(binding): return try json(202, [("ETag", accepted.headers.ETag), ("Location", accepted.headers.Location)], binding)
                    }
                }
            }
        default:
            return nil
        }
    }

    /// The handler answered in a way this table does not write (its successes are the only
    /// answers it returns; problems are thrown).
    private static func unexpected(_ operationID: String) -> APIError {
        .internalError("\(operationID) failed")
    }

    /// A JSON answer with the generated path's headers, in its order (an absent one is left out, as there).
    private static func json<Body: Encodable>(_ status: Int, _ headers: [(String, String?)], _ body: Body) throws -> HTTPResponse {
        HTTPResponse(status: status, headers: headers.compactMap { name, value in value.map { (name, $0) } } + [("Content-Type", "application/json; charset=utf-8")],
                     body: try CompactJSONEncoder.encode(body))
    }
}
