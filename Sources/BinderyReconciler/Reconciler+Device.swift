import BinderyKernel
import BinderyStore

extension Reconciler {
    /// A device: attach it to the VM it is assigned to (rebinding it to vfio-pci first when
    /// managed), detach it (giving it back to its original driver) when unassigned, and mark it
    /// Degraded while it is missing from the inventory.
    func reconcileDevice(_ address: String) async throws {
        guard let device = try await store.read({ db in try DeviceRepository.fetch(address, in: db) }) else { return }
        let attachedTo = kernel.attachment(of: address)
        var desired = device.vmID
        if let vmID = desired {
            let going = try await store.read { db in try VMRepository.isDeletionRequested(vmID, in: db) || VMRepository.isDeleted(vmID, in: db) }
            if going { desired = nil }
        }
        if !device.isPresent {
            if attachedTo != nil { forget(address) }
            try await setStatus(device, phase: .degraded, Condition(type: .present, status: false, reason: .deviceMissing,
                                                                      message: "\(address) is no longer in the PCI inventory"))
            for binding in try await store.read({ db in try BindingRepository.live(deviceAddress: address, in: db) }) {
                queue.add(.binding(binding.id))
            }
            return
        }
        if let current = attachedTo, current != desired {
            try await detach(device, from: current)
        }
        guard let vmID = desired else {
            if device.phase != .unassigned || attachedTo != nil {
                try await setStatus(device, phase: .unassigned, Condition(type: .attached, status: false, reason: .unassigned,
                                                                          message: "not assigned to a VM"))
            }
            return
        }
        if kernel.attachment(of: address) == vmID {
            if device.phase != .attached || device.observedGeneration != device.meta.generation {
                try await setStatus(device, phase: .attached, Condition(type: .attached, status: true, reason: .attached,
                                                                        message: "attached to \(vmID)"))
            }
            return
        }
        guard let context = kernel.context(vmID) else {
            try await setStatus(device, phase: .pending, Condition(type: .attached, status: false, reason: .waitingForVM,
                                                                   message: "waiting for \(vmID)'s VFIO context"))
            queue.add(.vm(vmID))
            return
        }
        // The policy again, live, right before sysfs or the kernel is touched: the host may have
        // started using the device since it was assigned.
        if let current = try? kernel.inventory.device(address),
           let refusal = options.devicePolicy.refusal(for: current, hostUse: kernel.inventory.hostUse(of: address)) {
            try await setStatus(device, phase: .failed, Condition(type: .attached, status: false, reason: .devicePolicy,
                                                                  message: "terminal: \(refusal)"))
            return
        }
        let intent = try await store.write { db in
            try OperationsJournal.begin(resourceType: "device", resourceID: address, action: "attach", generation: device.meta.generation, in: db)
        }
        do {
            var originalDriver = device.originalDriver
            if device.isManaged {
                // The original driver is durable before sysfs changes: a crash or a failure in
                // the middle of the rebind can no longer lose it. "" records "no driver": nil
                // would read as "never recorded" and the device would stay on vfio-pci after
                // release (found on a real kernel, #7). The first recorded driver is the one that counts.
                let plan = try kernel.binder.plan(address)
                if originalDriver == nil, plan.takesTheDevice {
                    let driver = plan.originalDriver ?? ""
                    try await store.write { db in try DeviceRepository.recordOriginalDriver(address, driver, in: db) }
                    originalDriver = driver
                }
                let recorded = originalDriver.map { $0.isEmpty ? nil : $0 } ?? plan.originalDriver
                try kernel.binder.apply(DriverRebindPlan(address: address, originalDriver: recorded))
            }
            if let probed = kernel.refreshCapabilitiesIfAwaitingDevice() {
                options.capabilitiesLearned?(probed)
                logger("capabilities probed again with \(address) on vfio-pci: nesting "
                    + (probed.nesting.supported ? "supported" : "unsupported (\(probed.nesting.reason ?? ""))"))
            }
            try kernel.withVM(vmID) { try context.attach(address) }
            kernel.setAttachment(vmID, of: address)
            syncKeptDescriptors(of: vmID)
            let recordedDriver = originalDriver
            let objects = kernelObjects(of: [vmID])
            try await store.write { db in
                try OperationsJournal.finish(intent, succeeded: true, in: db)
                try Self.record(objects, in: db)
                try DeviceRepository.updateStatus(address, phase: .attached, conditions: [
                    Condition(type: .attached, status: true, reason: .attached, message: "attached to \(vmID)"),
                    Condition(type: .present, status: true, reason: .present, message: "in the PCI inventory"),
                ], observedGeneration: device.meta.generation, originalDriver: .some(recordedDriver), in: db)
                try AuditChain.append(AuditRecord(actor: .reconciler, action: .deviceAttach, resourceType: "device", resourceID: address,
                                                  outcome: .success, after: JSONText.object([("vm", JSONText.string(vmID))])), in: db)
                // A VM reported Degraded while a VMM held its devices is whole again.
                if let vm = try VMRepository.fetch(id: vmID, in: db), vm.phase == .degraded {
                    try VMRepository.updateStatus(vmID, phase: .ready, conditions: [
                        Condition(type: .ready, status: true, reason: .contextOpen, message: "VFIO container open; \(address) attached again"),
                    ], observedGeneration: vm.meta.generation, in: db)
                }
            }
            succeeded(.device(address))
            statistics.record("device", succeeded: true)
            for binding in try await store.read({ db in try BindingRepository.live(deviceAddress: address, in: db) }) {
                queue.add(.binding(binding.id))
            }
        } catch let error as KernelError where error.errno == .EBUSY {
            // Without a kept container, a VMM that received the devices before a restart
            // still holds the group: report it, and leave it to that VMM (the resync looks again).
            statistics.record("device", succeeded: false, error: error)
            let holder = try await store.read { db in try AttachmentRepository.holder(of: vmID, in: db) }
            guard let holder, holder.isRunning else {
                try await recordAttachFailure(device, intent: intent, error: error)
                return
            }
            let message = "\(address) is held by the VMM (pid \(holder.pid), uid \(holder.uid), since \(holder.since)) that received it "
                + "before Bindery restarted without its kept descriptors; not taken back while that process holds it (\(error))"
            try await store.write { db in
                try OperationsJournal.finish(intent, succeeded: false, kernelCall: error.call, errno: error.errno?.name, in: db)
                try DeviceRepository.updateStatus(address, phase: .degraded, conditions: [
                    Condition(type: .attached, status: false, reason: .heldByVMM, message: message),
                ], observedGeneration: device.meta.generation, in: db)
                try VMRepository.updateStatus(vmID, phase: .degraded, conditions: [
                    Condition(type: .ready, status: false, reason: .heldByVMM, message: message),
                ], observedGeneration: try VMRepository.fetch(id: vmID, in: db)?.meta.generation ?? 0, in: db)
            }
        } catch let error as KernelError {
            statistics.record("device", succeeded: false, error: error)
            try await recordAttachFailure(device, intent: intent, error: error)
        }
    }

    /// A failed attach: journal, status (retrying with backoff) and audit.
    private func recordAttachFailure(_ device: DeviceRecord, intent: Int64, error: KernelError) async throws {
        let address = device.address
        let delay = await retry(.device(address))
        let reason: ConditionReason
        if case .groupNotViable = error { reason = .groupNotViable } else { reason = .kernelError }
        try await store.write { db in
            try OperationsJournal.finish(intent, succeeded: false, kernelCall: error.call, errno: error.errno?.name, in: db)
            try DeviceRepository.updateStatus(address, phase: .failed, conditions: [
                Condition(type: .attached, status: false, reason: reason, message: "\(error); retrying in \(String(format: "%.2f", delay)) s"),
            ], observedGeneration: device.meta.generation, in: db)
            try AuditChain.append(AuditRecord(actor: .reconciler, action: .deviceAttach, resourceType: "device", resourceID: address,
                                              outcome: .failed, after: JSONText.object([("error", JSONText.string("\(error)"))])), in: db)
        }
    }

    private func detach(_ device: DeviceRecord, from vmID: String) async throws {
        let address = device.address
        dropKeptDevice(address, of: vmID)
        // Bindings on the device go first: unbound and their PASIDs freed.
        if let context = kernel.context(vmID) {
            try kernel.withVM(vmID) {
                for binding in kernel.bindings(onDevice: address) {
                    if let table = kernel.boundTable(binding) {
                        try context.unbind(table.bind, on: address)
                        try context.freePASID(table.hostPASID, on: address)
                    }
                    kernel.setBoundTable(nil, for: binding)
                }
                try context.detach(address)
            }
            if context.attachedDevices.isEmpty { kernel.dropReservations(of: vmID) }
        }
        kernel.setAttachment(nil, of: address)
        syncKeptDescriptors(of: vmID)
        let restored: String? = device.isManaged ? device.originalDriver : nil
        if let restored { try kernel.binder.restore(address, to: restored.isEmpty ? nil : restored) }
        let objects = kernelObjects(of: [vmID])
        try await store.write { db in
            try Self.record(objects, in: db)
            try AuditChain.append(AuditRecord(actor: .reconciler, action: .deviceDetach, resourceType: "device", resourceID: address,
                                              outcome: .success,
                                              after: JSONText.object([("vm", JSONText.string(vmID)), ("restoredDriver", JSONText.optionalString(restored))])),
                                  in: db)
        }
    }

    /// Drops a vanished device from the kernel and the bookkeeping (best effort: it is gone).
    private func forget(_ address: String) {
        guard let vmID = kernel.attachment(of: address) else { return }
        dropKeptDevice(address, of: vmID)
        if let context = kernel.context(vmID) {
            kernel.withVM(vmID) {
                for binding in kernel.bindings(onDevice: address) {
                    if let table = kernel.boundTable(binding) {
                        try? context.unbind(table.bind, on: address)
                        try? context.freePASID(table.hostPASID, on: address)
                    }
                    kernel.setBoundTable(nil, for: binding)
                }
                try? context.detach(address)
            }
            if context.attachedDevices.isEmpty { kernel.dropReservations(of: vmID) }
        }
        kernel.setAttachment(nil, of: address)
        syncKeptDescriptors(of: vmID)
    }

    private func setStatus(_ device: DeviceRecord, phase: Phase, _ condition: Condition) async throws {
        try await store.write { db in
            try DeviceRepository.updateStatus(device.address, phase: phase, conditions: [condition],
                                              observedGeneration: device.meta.generation, in: db)
        }
    }
}
