import BinderyReconciler
import BinderyStore
import Foundation

extension APIHandler {
    private var context: RequestContext {
        get throws {
            guard let context = RequestContext.current else { throw APIError.internalError("no request context") }
            return context
        }
    }

    func createVM(_ input: Operations.createVM.Input) async throws -> Operations.createVM.Output {
        guard case let .json(body) = input.body else { throw APIError.badRequest("expected application/json") }
        let record = try await createdVM(body)
        return .created(.init(headers: .init(ETag: etag(record.meta.resourceVersion), Location: "/v1/vms/\(record.id)"),
                              body: .json(Representation.vm(record))))
    }

    /// Checks `body` against the rules the contract cannot say (names, labels, guest memory and
    /// its policy), stores the VM with its audit event and wakes the reconciler: the VM as
    /// stored. `createVM` and `DirectWrites` answer with it.
    func createdVM(_ body: Components.Schemas.VMCreate) async throws -> VMRecord {
        var validation = Validation()
        let name = body.name
        validation.checkVMName(name)
        let labels = body.labels?.additionalProperties ?? [:]
        validation.checkLabels(labels)
        let inputs = (body.memory ?? []).map {
            GuestMemoryRules.Input(guestAddress: $0.guestAddress, size: $0.size, backingPath: $0.backing?.path, backingOffset: $0.backing?.offset)
        }
        let regions = GuestMemoryRules.check(inputs, into: &validation)
        for (index, region) in regions.enumerated() {
            guard let path = region.backingPath else { continue }
            do {
                try memoryPolicy.check(path, offset: region.backingOffset, size: region.size)
            } catch {
                validation.fail("/memory/\(index)/backing/path", "\(error.detail) [rule: \(error.rule)]")
            }
        }
        try validation.throwIfInvalid()
        let context = try self.context
        let spec = VMSpec(name: name, labels: labels, memory: regions)
        let actor = context.actor, requestID = context.requestID
        let record: VMRecord
        do {
            record = try await store.write { db in try VMRepository.create(spec, actor: actor, requestID: requestID, in: db) }
        } catch StoreError.conflict(_, _, let value) {
            throw APIError.conflict("name-in-use", "a VM named \(value) exists")
        }
        reconciler.wake(.vm(record.id))
        return record
    }

    func listVMs(_ input: Operations.listVMs.Input) async throws -> Operations.listVMs.Output {
        let limit = try Validation.pageLimit(input.query.limit)
        let after = input.query.after
        return .ok(.init(body: .json(try await store.read { db in try ReadViews.vmPage(after: after, limit: limit, in: db) })))
    }

    func getVM(_ input: Operations.getVM.Input) async throws -> Operations.getVM.Output {
        let id = input.path.id
        // A deleted VM is gone for clients at once; its teardown shows in the change feed.
        guard let (body, etag) = try await store.read({ db in try ReadViews.vm(id, in: db) }) else { throw APIError.missing("vm", id) }
        return .ok(.init(headers: .init(ETag: etag), body: .json(body)))
    }

    func updateVM(_ input: Operations.updateVM.Input) async throws -> Operations.updateVM.Output {
        guard case let .json(body) = input.body else { throw APIError.badRequest("expected application/json") }
        var validation = Validation()
        if let name = body.name { validation.checkVMName(name) }
        let labels = body.labels?.additionalProperties
        if let labels { validation.checkLabels(labels) }
        try validation.throwIfInvalid()
        let id = input.path.id, ifMatch = input.headers.If_hyphen_Match, name = body.name
        let context = try self.context
        let actor = context.actor, requestID = context.requestID
        let record: VMRecord
        do {
            record = try await store.write { db -> VMRecord in
                guard let current = try VMRepository.fetch(id: id, in: db), !(try VMRepository.isDeleted(id, in: db)) else { throw APIError.missing("vm", id) }
                try checkIfMatch(ifMatch, current: current.meta.resourceVersion)
                return try VMRepository.update(id, name: name, labels: labels, actor: actor, requestID: requestID, in: db)
            }
        } catch StoreError.conflict(_, _, let value) {
            throw APIError.conflict("name-in-use", "a VM named \(value) exists")
        }
        return .ok(.init(headers: .init(ETag: etag(record.meta.resourceVersion)), body: .json(Representation.vm(record))))
    }

    func deleteVM(_ input: Operations.deleteVM.Input) async throws -> Operations.deleteVM.Output {
        let id = input.path.id, ifMatch = input.headers.If_hyphen_Match
        let context = try self.context
        let actor = context.actor, requestID = context.requestID
        let record = try await store.write { db -> VMRecord in
            guard let current = try VMRepository.fetch(id: id, in: db), !(try VMRepository.isDeleted(id, in: db)) else { throw APIError.missing("vm", id) }
            try checkIfMatch(ifMatch, current: current.meta.resourceVersion)
            return try VMRepository.requestDeletion(id, actor: actor, requestID: requestID, in: db)
        }
        reconciler.wake(.vm(id))
        return .accepted(.init(body: .json(Representation.vm(record))))
    }
}
