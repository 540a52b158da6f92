import BinderyReconciler
import BinderyStore
import Foundation

extension APIHandler {
    func createBinding(_ input: Operations.createBinding.Input) async throws -> Operations.createBinding.Output {
        guard case let .json(body) = input.body else { throw APIError.badRequest("expected application/json") }
        let record = try await createdBinding(body)
        return .accepted(.init(headers: .init(ETag: etag(record.meta.resourceVersion), Location: "/v1/bindings/\(record.id)"),
                               body: .json(Representation.binding(record))))
    }

    /// Checks `body` against the host's capabilities and the VM, device and PASIDs it names,
    /// stores the binding with its audit event and wakes the reconciler: the binding as
    /// stored. `createBinding` and `DirectWrites` answer with it.
    func createdBinding(_ body: Components.Schemas.BindingCreate) async throws -> BindingRecord {
        let host = capabilities()
        var validation = Validation()
        let supported = host.nesting.formats.map { "\($0.name) versions \($0.versions.map(String.init).joined(separator: ","))" }
        let supportedText = supported.isEmpty ? "none (\(host.nesting.reason ?? "no nesting capability"))" : supported.joined(separator: "; ")
        let format = body.format.rawValue, version = body.version.rawValue
        if !host.nesting.formats.contains(where: { $0.name == format }) {
            validation.fail("/format", "\(format) is not a format this host binds; it supports: \(supportedText)")
        } else if !host.supports(format: format, version: version) {
            validation.fail("/version", "\(format) version \(version) is not supported; this host supports: \(supportedText)")
        }
        let address = Validation.hex(body.pageTable.address)
        validation.check(address != nil, "/pageTable/address", "a hex address like 0x1f0000000")
        if let address { validation.check(address & 0xfff == 0, "/pageTable/address", "must be 4 KiB aligned") }
        let width = body.pageTable.addressWidth.rawValue
        if ![39, 48, 57].contains(width) {
            validation.fail("/pageTable/addressWidth", "must be 39, 48 or 57")
        } else if host.nesting.supported, !host.nesting.addressWidths.contains(width) {
            validation.fail("/pageTable/addressWidth", "\(width) is wider than this host supports (\(host.nesting.addressWidths.map(String.init).joined(separator: ", ")))")
        }
        let vtd = body.vtd
        for (name, value) in [("pat", vtd?.pat), ("emt", vtd?.emt)] {
            if let value { validation.check((0...Int64(UInt32.max)).contains(value), "/vtd/\(name)", "a 32-bit unsigned value") }
        }
        try validation.throwIfInvalid()

        let vmID = body.vm, deviceAddress = body.device
        let guestPASID = body.guestPasid, hostPASID = body.hostPasid
        let hostBits = host.nesting.pasidBits
        guard let context = RequestContext.current else { throw APIError.internalError("no request context") }
        let actor = context.actor, requestID = context.requestID
        var fields: [(String, String)] = []
        for (name, value) in [("sre", vtd?.sre), ("eafe", vtd?.eafe), ("pcd", vtd?.pcd), ("pwt", vtd?.pwt), ("emte", vtd?.emte), ("cd", vtd?.cd)] {
            if let value { fields.append((name, value ? "true" : "false")) }
        }
        if let pat = vtd?.pat { fields.append(("pat", String(pat))) }
        if let emt = vtd?.emt { fields.append(("emt", String(emt))) }
        let formatFields = JSONText.object(fields)
        let record = try await store.write { db -> BindingRecord in
            var checks = Validation()
            guard let vm = try VMRepository.fetch(id: vmID, in: db), !(try VMRepository.isDeletionRequested(vmID, in: db)) else {
                checks.fail("/vm", "no VM \(vmID)")
                try checks.throwIfInvalid()
                throw APIError.missing("vm", vmID)
            }
            guard let device = try DeviceRepository.fetch(deviceAddress, in: db) else {
                checks.fail("/device", "no device \(deviceAddress)")
                try checks.throwIfInvalid()
                throw APIError.missing("device", deviceAddress)
            }
            checks.check(device.vmID == vmID, "/device", "\(deviceAddress) is not assigned to \(vmID)")
            checks.check(device.snapshot.pasidSupported, "/device", "\(deviceAddress) has no PASID capability")
            if let address {
                checks.check(GuestMemoryRules.contains(vm.spec.memory, page: address),
                             "/pageTable/address", "0x\(String(address, radix: 16)) is outside \(vmID)'s guest memory")
            }
            try checks.throwIfInvalid()
            let deviceLimit = Int64(1) << Int64(device.snapshot.pasidWidth)
            guard guestPASID > 0, guestPASID < deviceLimit else {
                throw APIError.invalid("pasid-out-of-range", "/guestPasid",
                                       "guestPasid \(guestPASID) is outside 1...\(deviceLimit - 1) (\(deviceAddress) has \(device.snapshot.pasidWidth)-bit PASIDs)")
            }
            if let hostPASID {
                let hostLimit = Int64(1) << Int64(hostBits)
                guard hostPASID > 0, hostPASID < hostLimit, hostPASID < deviceLimit else {
                    throw APIError.invalid("pasid-out-of-range", "/hostPasid", "hostPasid \(hostPASID) is outside 1...\(min(hostLimit, deviceLimit) - 1)")
                }
                let taken = try Int.fetchOne(db, sql: """
                    SELECT count(*) FROM bindings WHERE deleted_at IS NULL AND device_address = ? AND (requested_host_pasid = ? OR host_pasid = ?)
                    """, arguments: [deviceAddress, hostPASID, hostPASID]) ?? 0
                guard taken == 0 else { throw APIError.conflict("pasid-in-use", "host PASID \(hostPASID) is in use on \(deviceAddress)") }
            }
            do {
                return try BindingRepository.create(
                    BindingSpec(vmID: vmID, deviceAddress: deviceAddress, guestPASID: Int(guestPASID), requestedHostPASID: hostPASID.map(Int.init),
                                pageTableAddress: address ?? 0, addressWidth: width, formatFields: formatFields),
                    actor: actor, requestID: requestID, in: db)
            } catch StoreError.conflict {
                throw APIError.conflict("pasid-in-use", "guest PASID \(guestPASID) is already bound on \(deviceAddress)")
            }
        }
        reconciler.wake(.binding(record.id))
        return record
    }

    func listBindings(_ input: Operations.listBindings.Input) async throws -> Operations.listBindings.Output {
        let limit = try Validation.pageLimit(input.query.limit)
        let vm = input.query.vm, device = input.query.device, after = input.query.after
        return .ok(.init(body: .json(try await store.read { db in
            try ReadViews.bindingPage(vm: vm, device: device, after: after, limit: limit, in: db)
        })))
    }

    func getBinding(_ input: Operations.getBinding.Input) async throws -> Operations.getBinding.Output {
        let id = input.path.id
        guard let (body, etag) = try await store.read({ db in try ReadViews.binding(id, in: db) }) else {
            throw APIError.missing("binding", id)
        }
        return .ok(.init(headers: .init(ETag: etag), body: .json(body)))
    }

    func replacePageTable(_ input: Operations.replacePageTable.Input) async throws -> Operations.replacePageTable.Output {
        guard case let .json(body) = input.body else { throw APIError.badRequest("expected application/json") }
        let id = input.path.id, ifMatch = input.headers.If_hyphen_Match
        let host = capabilities()
        var validation = Validation()
        let address = Validation.hex(body.address)
        validation.check(address != nil && address! & 0xfff == 0, "/address", "a 4 KiB aligned hex address")
        validation.check(host.nesting.addressWidths.contains(body.addressWidth.rawValue), "/addressWidth",
                         "must be one of \(host.nesting.addressWidths.map(String.init).joined(separator: ", "))")
        try validation.throwIfInvalid()
        guard let context = RequestContext.current else { throw APIError.internalError("no request context") }
        let actor = context.actor, requestID = context.requestID, width = body.addressWidth.rawValue
        let record = try await store.write { db -> BindingRecord in
            guard let current = try BindingRepository.fetch(id, in: db), current.deletedAt == nil, current.deletionRequestedAt == nil else {
                throw APIError.missing("binding", id)
            }
            try checkIfMatch(ifMatch, current: current.meta.resourceVersion)
            if let vm = try VMRepository.fetch(id: current.spec.vmID, in: db), let address,
               !GuestMemoryRules.contains(vm.spec.memory, page: address) {
                var checks = Validation()
                checks.fail("/address", "0x\(String(address, radix: 16)) is outside \(vm.id)'s guest memory")
                try checks.throwIfInvalid()
            }
            return try BindingRepository.replacePageTable(id, address: address!, addressWidth: width, actor: actor, requestID: requestID, in: db)
        }
        reconciler.wake(.binding(id))
        return .accepted(.init(headers: .init(ETag: etag(record.meta.resourceVersion)), body: .json(Representation.binding(record))))
    }

    func deleteBinding(_ input: Operations.deleteBinding.Input) async throws -> Operations.deleteBinding.Output {
        let id = input.path.id, ifMatch = input.headers.If_hyphen_Match
        guard let context = RequestContext.current else { throw APIError.internalError("no request context") }
        let actor = context.actor, requestID = context.requestID
        let record = try await store.write { db -> BindingRecord in
            guard let current = try BindingRepository.fetch(id, in: db), current.deletionRequestedAt == nil else { throw APIError.missing("binding", id) }
            try checkIfMatch(ifMatch, current: current.meta.resourceVersion)
            return try BindingRepository.requestDeletion(id, actor: actor, requestID: requestID, in: db)
        }
        reconciler.wake(.binding(id))
        return .accepted(.init(body: .json(Representation.binding(record))))
    }
}
