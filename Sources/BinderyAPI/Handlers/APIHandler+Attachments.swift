import BinderyStore
import Foundation

extension APIHandler {
    /// `POST /v1/vms/{id}/attachments`: a one-time token for the VM's VMM (see `VMMSocketServer`).
    func createAttachment(_ input: Operations.createAttachment.Input) async throws -> Operations.createAttachment.Output {
        var requested = 300
        if case let .json(body)? = input.body, let ttl = body.ttlSeconds { requested = ttl }
        let lifetime = requested
        guard (10...3600).contains(lifetime) else {
            throw APIError.invalid("out-of-range", "/ttlSeconds", "must be between 10 and 3600")
        }
        guard let context = RequestContext.current else { throw APIError.internalError("no request context") }
        let id = input.path.id, actor = context.actor, requestID = context.requestID
        let issued: AttachmentRepository.Issued
        do {
            issued = try await store.write { db in
                try AttachmentRepository.issue(vmID: id, lifetime: TimeInterval(lifetime), actor: actor, requestID: requestID, in: db)
            }
        } catch StoreError.notFound {
            throw APIError.missing("vm", id)
        } catch let StoreError.limitReached(what, limit) {
            throw APIError.conflict("too-many-attach-tokens", "\(what) reached the limit of \(limit); use or let one expire first")
        }
        return .created(.init(body: .json(.init(vm: id, token: issued.token, expiresAt: issued.expiresAt, socket: vmmSocketPath))))
    }
}
