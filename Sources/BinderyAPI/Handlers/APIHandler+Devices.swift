import BinderyReconciler
import BinderyStore

extension APIHandler {
    func listDevices(_ input: Operations.listDevices.Input) async throws -> Operations.listDevices.Output {
        let query = input.query
        let devices = try await store.read { db in try DeviceRepository.all(in: db) }.filter { device in
            (query.iommuGroup.map { device.snapshot.iommuGroup == $0 } ?? true)
                && (query.vm.map { device.vmID == $0 } ?? true)
                && (query.driver.map { device.snapshot.driver == $0 } ?? true)
                && (query.assignable.map { $0 == (device.isPresent && device.snapshot.refusalRule == nil && device.vmID == nil) } ?? true)
        }
        return .ok(.init(body: .json(.init(items: devices.map(Representation.device)))))
    }

    func getDevice(_ input: Operations.getDevice.Input) async throws -> Operations.getDevice.Output {
        let address = input.path.address
        guard let device = try await store.read({ db in try DeviceRepository.fetch(address, in: db) }) else {
            throw APIError.missing("device", address)
        }
        return .ok(.init(body: .json(Representation.device(device))))
    }

    func assignDevice(_ input: Operations.assignDevice.Input) async throws -> Operations.assignDevice.Output {
        guard case let .json(body) = input.body else { throw APIError.badRequest("expected application/json") }
        let vmID = input.path.id, address = input.path.address, managed = body.managed ?? false
        guard let context = RequestContext.current else { throw APIError.internalError("no request context") }
        let actor = context.actor, requestID = context.requestID
        let device = try await store.write { db -> DeviceRecord in
            guard try VMRepository.fetch(id: vmID, in: db) != nil, !(try VMRepository.isDeletionRequested(vmID, in: db)) else {
                throw APIError.missing("vm", vmID)
            }
            guard let device = try DeviceRepository.fetch(address, in: db) else { throw APIError.missing("device", address) }
            if let owner = device.vmID, owner != vmID {
                throw APIError.conflict("device-assigned", "\(address) is assigned to \(owner)")
            }
            if let rule = device.snapshot.refusalRule {
                var refusal = APIError(status: 422, type: "device-policy",
                                       detail: "the device policy refuses \(address) (\(rule)): \(device.snapshot.refusalReason ?? rule)")
                refusal.fields = [("/path/address", "\(rule): \(device.snapshot.refusalReason ?? rule)")]
                throw refusal
            }
            guard let group = device.snapshot.iommuGroup else {
                var validation = Validation()
                validation.fail("/address", "\(address) has no IOMMU group, so it cannot be isolated for a VM")
                try validation.throwIfInvalid()
                return device
            }
            let inTheWay = try DeviceRepository.all(in: db).filter { $0.snapshot.iommuGroup == group && $0.vmID != nil && $0.vmID != vmID }
            guard inTheWay.isEmpty else {
                throw APIError.conflict("iommu-group-not-viable", "IOMMU group \(group) is not viable for \(vmID): "
                    + inTheWay.map { "\($0.address) is assigned to \($0.vmID!)" }.joined(separator: ", "))
            }
            return try DeviceRepository.assign(address, to: vmID, managed: managed, actor: actor, requestID: requestID, in: db)
        }
        reconciler.wake(.device(address))
        reconciler.wake(.vm(vmID))
        return .accepted(.init(body: .json(Representation.device(device))))
    }

    func unassignDevice(_ input: Operations.unassignDevice.Input) async throws -> Operations.unassignDevice.Output {
        let vmID = input.path.id, address = input.path.address
        guard let context = RequestContext.current else { throw APIError.internalError("no request context") }
        let actor = context.actor, requestID = context.requestID
        let device = try await store.write { db -> DeviceRecord in
            guard let device = try DeviceRepository.fetch(address, in: db), device.vmID == vmID else {
                throw APIError.missing("assignment of \(address) to", vmID)
            }
            let live = try BindingRepository.live(deviceAddress: address, in: db)
            guard live.isEmpty else {
                throw APIError.conflict("device-has-bindings", "\(address) still has \(live.count) bindings; delete them first")
            }
            return try DeviceRepository.assign(address, to: nil, managed: device.isManaged, actor: actor, requestID: requestID, in: db)
        }
        reconciler.wake(.device(address))
        return .accepted(.init(body: .json(Representation.device(device))))
    }
}
