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
        var validation = Validation()
        let name = body.name
        validation.checkVMName(name)
        let labels = body.labels?.additionalProperties ?? [:]
        validation.checkLabels(labels)
        var regions: [MemoryRegion] = []
        for (index, region) in (body.memory ?? []).enumerated() {
            let pointer = "/memory/\(index)"
            guard let address = Validation.hex(region.guestAddress) else {
                validation.fail("\(pointer)/guestAddress", "a hex address like 0x100000000")
                continue
            }
            validation.check(address & 0xfff == 0, "\(pointer)/guestAddress", "must be 4 KiB aligned")
            validation.check(region.size >= 4096 && region.size & 0xfff == 0, "\(pointer)/size", "a positive multiple of 4096")
            validation.check(address < (1 << 57) && region.size < (1 << 57) && address + UInt64(max(region.size, 0)) <= (1 << 57),
                             "\(pointer)", "must lie below 2^57")
            if let backing = region.backing {
                validation.check(backing.path.hasPrefix("/"), "\(pointer)/backing/path", "an absolute path")
                validation.check((backing.offset ?? 0) >= 0 && (backing.offset ?? 0) & 0xfff == 0, "\(pointer)/backing/offset", "a non-negative multiple of 4096")
            }
            let candidate = MemoryRegion(guestAddress: address, size: UInt64(max(region.size, 0)), backingPath: region.backing?.path,
                                         backingOffset: UInt64(max(region.backing?.offset ?? 0, 0)))
            if regions.contains(where: { candidate.guestAddress < $0.guestAddress + $0.size && $0.guestAddress < candidate.guestAddress + candidate.size }) {
                validation.fail(pointer, "overlaps another region")
            }
            regions.append(candidate)
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
        return .created(.init(headers: .init(ETag: etag(record.meta.resourceVersion), Location: "/v1/vms/\(record.id)"),
                              body: .json(Representation.vm(record))))
    }

    func listVMs(_ input: Operations.listVMs.Input) async throws -> Operations.listVMs.Output {
        let limit = try Validation.pageLimit(input.query.limit)
        let after = input.query.after
        let records = try await store.read { db in try VMRepository.list(after: after, limit: limit + 1, in: db) }
        let page = records.prefix(limit)
        return .ok(.init(body: .json(.init(items: page.map(Representation.vm),
                                            nextCursor: records.count > limit ? page.last?.id : nil))))
    }

    func getVM(_ input: Operations.getVM.Input) async throws -> Operations.getVM.Output {
        let id = input.path.id
        guard let record = try await store.read({ db in try VMRepository.fetch(id: id, in: db) }) else { throw APIError.missing("vm", id) }
        return .ok(.init(headers: .init(ETag: etag(record.meta.resourceVersion)), body: .json(Representation.vm(record))))
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
