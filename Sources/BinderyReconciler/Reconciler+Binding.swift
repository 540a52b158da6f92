import BinderyKernel
import BinderyStore
import Foundation

extension Reconciler {
    /// What one binding needs this pass.
    private enum Plan {
        case nothing
        case status(phase: Phase, Condition, retry: Bool)
        case bind(BindingRecord, any VMIOMMUContext)
        case rebind(BindingRecord, any VMIOMMUContext, old: KernelHost.BoundTable)
        case unbind(BindingRecord, KernelHost.BoundTable?)
    }

    /// The kernel actions a binding pass takes, as journaled and audited.
    enum KernelAction: String {
        case bind, rebind, unbind

        /// The audit action recording it.
        var audit: AuditAction {
            switch self {
            case .bind: return .bindingBind
            case .rebind: return .bindingRebind
            case .unbind: return .bindingUnbind
            }
        }
    }

    /// What one kernel action did.
    private struct Outcome {
        var record: BindingRecord
        var action: KernelAction
        var intent: Int64 = 0
        var table: KernelHost.BoundTable?
        var error: KernelError?
        var deleted = false
    }

    /// A batch of bindings: decide, journal the intents in one transaction, act on the kernel,
    /// then record results, status and audit events in one transaction.
    func reconcileBindings(_ ids: [String]) async throws {
        let plans = try await store.read { db -> [(String, Plan, BindingRecord?)] in
            try ids.map { id in
                guard let record = try BindingRepository.fetch(id, in: db), record.deletedAt == nil else { return (id, .nothing, nil) }
                return (id, try self.plan(record, in: db), record)
            }
        }
        var work: [Outcome] = []
        var statusOnly: [(BindingRecord, Phase, Condition, Bool)] = []
        for (_, plan, record) in plans {
            switch plan {
            case .nothing: break
            case let .status(phase, condition, retry): statusOnly.append((record!, phase, condition, retry))
            case let .bind(record, _): work.append(Outcome(record: record, action: .bind))
            case let .rebind(record, _, _): work.append(Outcome(record: record, action: .rebind))
            case let .unbind(record, _): work.append(Outcome(record: record, action: .unbind))
            }
        }
        if !work.isEmpty {
            let intents = try await store.write { [work] db in
                try work.map { try OperationsJournal.begin(resourceType: "binding", resourceID: $0.record.id, action: $0.action.rawValue,
                                                           generation: $0.record.meta.generation, in: db) }
            }
            for index in work.indices { work[index].intent = intents[index] }
        }
        var index = 0
        for (_, plan, _) in plans {
            switch plan {
            case let .bind(record, context): work[index] = act(work[index]) { try self.bind(record, context) }
            case let .rebind(record, context, old): work[index] = act(work[index]) { try self.rebind(record, context, old: old) }
            case let .unbind(record, table): work[index] = act(work[index]) { try self.unbind(record, table); return nil }
            default: continue
            }
            index += 1
        }
        var delays: [String: Double] = [:]
        for outcome in work where outcome.error.map({ !isTerminal($0) }) ?? false {
            delays[outcome.record.id] = await retry(.binding(outcome.record.id))
        }
        for (record, _, _, shouldRetry) in statusOnly where shouldRetry {
            delays[record.id] = await retry(.binding(record.id))
        }
        let vmsToWake = Set(work.filter(\.deleted).map(\.record.spec.vmID))
        let objects = kernelObjects(of: Set(work.map(\.record.spec.vmID)))
        try await store.write { [work, statusOnly, delays] db in
            for outcome in work { try self.record(outcome, retryIn: delays[outcome.record.id], in: db) }
            try Self.record(objects, in: db)
            for (record, phase, condition, _) in statusOnly where record.phase != phase || record.conditions.first(where: { $0.type == condition.type })?.reason != condition.reason {
                try BindingRepository.updateStatus(record, phase: phase, conditions: [condition],
                                                   observedGeneration: record.observedGeneration, hostPASID: .some(nil), in: db)
            }
        }
        for outcome in work {
            statistics.record("binding", succeeded: outcome.error == nil, error: outcome.error)
            if outcome.error == nil { succeeded(.binding(outcome.record.id)) }
        }
        for vmID in vmsToWake { queue.add(.vm(vmID)) }
    }

    private func plan(_ record: BindingRecord, in db: StoreTransaction) throws -> Plan {
        let vmID = record.spec.vmID, address = record.spec.deviceAddress
        let current = kernel.boundTable(record.id)
        let vmGoing = try VMRepository.isDeletionRequested(vmID, in: db)
        if record.deletionRequestedAt != nil || vmGoing { return .unbind(record, current) }
        guard let device = try DeviceRepository.fetch(address, in: db), device.isPresent else {
            if current != nil { kernel.setBoundTable(nil, for: record.id) }
            return .status(phase: .degraded, Condition(type: .bound, status: false, reason: .deviceMissing,
                                                         message: "\(address) is no longer in the PCI inventory"), retry: false)
        }
        guard let context = kernel.context(vmID), kernel.attachment(of: address) == vmID else {
            return .status(phase: .pending, Condition(type: .bound, status: false, reason: .waitingForDevice,
                                                        message: "waiting for \(address) to be attached to \(vmID)"), retry: false)
        }
        let addressWidth: Int
        switch context.pageTableBinding {
        case let .available(width, _, _): addressWidth = width
        case .unknown:
            return .status(phase: .pending, Condition(type: .bound, status: false, reason: .waitingForDevice,
                                                        message: "waiting for \(vmID)'s IOMMU context to report what it can bind"), retry: false)
        case let .unavailable(reason):
            return .status(phase: .failed, Condition(type: .bound, status: false, reason: .capabilityMissing,
                message: "terminal: \(reason), so this host cannot bind guest page tables for \(vmID) (binding path \(kernel.bindingPath.rawValue))"),
                retry: false)
        }
        guard record.spec.format == "intel-vtd", record.spec.version == 1, addressWidth >= record.spec.addressWidth else {
            return .status(phase: .failed, Condition(type: .bound, status: false, reason: .formatNotSupported,
                message: "terminal: this host binds intel-vtd version 1 up to \(addressWidth)-bit addresses"), retry: false)
        }
        if let current {
            if current.generation == record.meta.generation {
                return record.phase == .bound ? .nothing : .status(phase: .bound, Condition(type: .bound, status: true, reason: .bound,
                    message: "host PASID \(current.hostPASID)"), retry: false)
            }
            return .rebind(record, context, old: current)
        }
        return .bind(record, context)
    }

    private func act(_ outcome: Outcome, _ body: () throws -> KernelHost.BoundTable?) -> Outcome {
        var outcome = outcome
        do {
            outcome.table = try body()
            if outcome.action == .unbind { outcome.deleted = true }
        } catch let error as KernelError {
            outcome.error = error
        } catch {
            outcome.error = .unexpected(call: outcome.action.rawValue, detail: "\(error)")
        }
        return outcome
    }

    func guestTable(_ record: BindingRecord, hostPASID: UInt32) -> GuestPageTableBind {
        let fields = (try? JSONSerialization.jsonObject(with: Data(record.spec.formatFields.utf8))) as? [String: Any] ?? [:]
        let flags = GuestPageTableBind.vtdFlags(named: Set(fields.compactMap { $0.value as? Bool == true ? $0.key : nil }))
        return GuestPageTableBind(addressWidth: UInt32(record.spec.addressWidth), pageTable: record.spec.pageTableAddress,
                                  hostPASID: UInt64(hostPASID), guestPASID: UInt64(record.spec.guestPASID), vtdFlags: flags,
                                  pat: UInt32(fields["pat"] as? Int ?? 0), emt: UInt32(fields["emt"] as? Int ?? 0))
    }

    /// Binds on a host PASID: the one reserved by an earlier failed attempt, else a new one
    /// (the requested one, if any). A failed bind keeps the PASID reserved for the retry.
    private func bind(_ record: BindingRecord, _ context: any VMIOMMUContext) throws -> KernelHost.BoundTable {
        try kernel.withVM(record.spec.vmID) {
            let pasid: UInt32
            if let reserved = kernel.reservedPASID(for: record.id, vmID: record.spec.vmID) {
                pasid = reserved
            } else {
                pasid = try context.allocatePASID(on: record.spec.deviceAddress, in: record.spec.requestedHostPASID.map { UInt32($0)...UInt32($0) })
                kernel.setReservedPASID(pasid, for: record.id, vmID: record.spec.vmID)
            }
            let table = guestTable(record, hostPASID: pasid)
            try context.bind(table, on: record.spec.deviceAddress)
            kernel.setReservedPASID(nil, for: record.id, vmID: record.spec.vmID)
            let bound = KernelHost.BoundTable(vmID: record.spec.vmID, device: record.spec.deviceAddress, hostPASID: pasid,
                                              bind: table, generation: record.meta.generation)
            kernel.setBoundTable(bound, for: record.id)
            return bound
        }
    }

    /// The guest switched tables: replace the old one with the new one on the same host PASID.
    /// If the new one is refused, the old one stays bound (the executor puts it back).
    private func rebind(_ record: BindingRecord, _ context: any VMIOMMUContext, old: KernelHost.BoundTable) throws -> KernelHost.BoundTable {
        try kernel.withVM(record.spec.vmID) {
            let table = guestTable(record, hostPASID: old.hostPASID)
            do {
                try context.rebind(from: old.bind, to: table, on: record.spec.deviceAddress)
            } catch let error as KernelError {
                // Putting the old table back failed too: nothing is bound, the PASID stays ours.
                if case .rollbackIncomplete = error {
                    kernel.setBoundTable(nil, for: record.id)
                    kernel.setReservedPASID(old.hostPASID, for: record.id, vmID: record.spec.vmID)
                }
                throw error
            }
            let bound = KernelHost.BoundTable(vmID: record.spec.vmID, device: record.spec.deviceAddress, hostPASID: old.hostPASID,
                                              bind: table, generation: record.meta.generation)
            kernel.setBoundTable(bound, for: record.id)
            return bound
        }
    }

    /// Unbinds (if bound) and frees the binding's PASID (bound or only reserved).
    private func unbind(_ record: BindingRecord, _ table: KernelHost.BoundTable?) throws {
        let vmID = record.spec.vmID
        guard let context = kernel.context(vmID) else { return }
        try kernel.withVM(vmID) {
            if let table {
                try context.unbind(table.bind, on: record.spec.deviceAddress)
                kernel.setBoundTable(nil, for: record.id)
                kernel.setReservedPASID(table.hostPASID, for: record.id, vmID: vmID)
            }
            if let pasid = kernel.reservedPASID(for: record.id, vmID: vmID) {
                try context.freePASID(pasid, on: record.spec.deviceAddress)
                kernel.setReservedPASID(nil, for: record.id, vmID: vmID)
            }
        }
    }

    private func isTerminal(_ error: KernelError) -> Bool {
        if case .unsupported = error { return true }
        return false
    }

    private func record(_ outcome: Outcome, retryIn delay: Double?, in db: StoreTransaction) throws {
        let record = outcome.record
        try OperationsJournal.finish(outcome.intent, succeeded: outcome.error == nil, kernelCall: outcome.error?.call,
                                     errno: outcome.error?.errno?.name, in: db)
        if let error = outcome.error {
            let retryAt = delay.map { Timestamp.format(Date().addingTimeInterval($0)) }
            let message = isTerminal(error) ? "terminal: \(error)" : "\(error); retrying at \(retryAt ?? "-")"
            // The kernel saying something is missing is drift (Degraded, recovers on its own), not a refusal.
            let missing = error.errno == .ENODEV || error.errno == .ENOENT
            let reason: ConditionReason = isTerminal(error) ? .capabilityMissing : missing ? .kernelResourceMissing : .kernelError
            try BindingRepository.updateStatus(record, phase: missing ? .degraded : .failed, conditions: [
                Condition(type: .bound, status: false, reason: reason, message: message),
            ], observedGeneration: record.observedGeneration, hostPASID: .some(nil),
               lastError: (error.call, error.errno?.name ?? "none"), nextRetryAt: retryAt, in: db)
            try AuditChain.append(AuditRecord(actor: .reconciler, action: outcome.action.audit, resourceType: "binding",
                                              resourceID: record.id, outcome: .failed,
                                              after: JSONText.object([("call", JSONText.string(error.call)),
                                                                      ("errno", JSONText.optionalString(error.errno?.name)),
                                                                      ("error", JSONText.string("\(error)"))])), in: db)
            return
        }
        if outcome.deleted {
            try BindingRepository.releaseHostPASID(binding: record.id, in: db)
            try BindingRepository.markDeleted(record.id, in: db)
            try AuditChain.append(AuditRecord(actor: .reconciler, action: .bindingUnbind, resourceType: "binding", resourceID: record.id,
                                              outcome: .success, before: record.auditJSON), in: db)
            return
        }
        guard let table = outcome.table else { return }
        try BindingRepository.recordHostPASID(Int(table.hostPASID), device: record.spec.deviceAddress, binding: record.id, in: db)
        try BindingRepository.updateStatus(record, phase: .bound, conditions: [
            Condition(type: .bound, status: true, reason: .bound, message: "guest PASID \(record.spec.guestPASID) bound at host PASID \(table.hostPASID)"),
        ], observedGeneration: record.meta.generation, hostPASID: .some(Int(table.hostPASID)), in: db)
        try AuditChain.append(AuditRecord(actor: .reconciler, action: outcome.action.audit, resourceType: "binding", resourceID: record.id,
                                          outcome: .success,
                                          after: JSONText.object([("hostPasid", String(table.hostPASID)), ("generation", String(record.meta.generation))])),
                              in: db)
    }
}

