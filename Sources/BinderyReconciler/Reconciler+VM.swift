import BinderyKernel
import BinderyStore
import GRDB

extension Reconciler {
    /// What the reconciler reads of a VM before acting on it.
    struct VMState {
        var vm: VMRecord
        var deleting: Bool
        var deleted: Bool
        var bindings: [String]
        var devices: [String]
    }

    /// What the reconciler acts on for VM `id`, from one transaction; nil when there is no such VM.
    static func readVMState(_ id: String, in db: Database) throws -> VMState? {
        guard let (vm, deleting, deleted) = try VMRepository.fetchWithLifecycle(id: id, in: db) else { return nil }
        return VMState(vm: vm, deleting: deleting, deleted: deleted, bindings: try BindingRepository.liveIDs(vmID: id, in: db),
                       devices: try DeviceRepository.assignedAddresses(to: id, in: db))
    }

    /// VMs, a batch at a time: one read for all of them, and one write for those that only
    /// need accepting (no device, no context, memory within the policy). Creates come in
    /// bursts, and each would otherwise wait for its own turn at the single writer, between
    /// the API's own writes, while its key waited in memory. The others are read again just
    /// before they are acted on (the batch's read may be stale by then) and go `workers` at a
    /// time, each with its own retry: one VM's failure holds up no other.
    func reconcileVMs(_ ids: [String]) async throws {
        let states = try await store.read { db in try ids.compactMap { try Self.readVMState($0, in: db) } }
        var accepting: [VMRecord] = [], others: [String] = []
        for state in states where !state.deleted {
            if isOnlyToAccept(state) { accepting.append(state.vm) } else { others.append(state.vm.id) }
        }
        try await markReadyWithoutContext(accepting)
        let width = max(1, options.workers)
        for start in stride(from: 0, to: others.count, by: width) {
            await withTaskGroup(of: Void.self) { group in
                for id in others[start..<min(start + width, others.count)] {
                    group.addTask {
                        do {
                            try await self.reconcileVM(id)
                        } catch {
                            self.logger("reconcile vm \(id) failed: \(error); retrying")
                            await self.retry(.vm(id))
                        }
                    }
                }
            }
        }
    }

    /// A VM: open its context (container + guest memory) once a device is assigned to it or,
    /// when deletion was asked for, tear down in reverse order — bindings, then devices, then
    /// the context — and leave a tombstone. A VM with no device holds nothing in the kernel (no
    /// descriptor, no memory here): a host can accept far more VMs than it has descriptors.
    func reconcileVM(_ id: String) async throws {
        guard let state = try await store.read({ db in try Self.readVMState(id, in: db) }) else { return }
        try await reconcileVM(state)
    }

    /// Whether all `state`'s VM needs is to be marked Ready without a context: not being
    /// deleted, no device, no context, guest memory within the policy.
    private func isOnlyToAccept(_ state: VMState) -> Bool {
        !state.deleting && state.devices.isEmpty && kernel.context(state.vm.id) == nil && (try? guestMemoryRegions(of: state.vm)) != nil
    }

    private func reconcileVM(_ state: VMState) async throws {
        let (vm, deleting, deleted, bindings, devices) = (state.vm, state.deleting, state.deleted, state.bindings, state.devices)
        let id = vm.id
        guard !deleted else { return }
        if isOnlyToAccept(state) { return try await markReadyWithoutContext([vm]) }
        if deleting {
            try await tearDown(vm, bindings: bindings, devices: devices)
            return
        }
        if kernel.context(id) == nil {
            let regions: [GuestMemoryRegion]
            do {
                regions = try guestMemoryRegions(of: vm)
            } catch {
                // The policy changed since the VM was accepted: terminal until the VM or the policy changes.
                try await store.write { db in
                    try VMRepository.updateStatus(id, phase: .failed, conditions: [
                        Condition(type: .ready, status: false, reason: .memoryPolicy, message: "terminal: \(error.detail)"),
                    ], observedGeneration: vm.meta.generation, in: db)
                }
                return
            }
            let intent = try await store.write { db in
                try OperationsJournal.begin(resourceType: "vm", resourceID: id, action: "open-context", generation: vm.meta.generation, in: db)
            }
            do {
                let context = try kernel.makeContext(memory: regions)
                kernel.setContext(context, for: id)
                try await store.write { db in
                    try OperationsJournal.finish(intent, succeeded: true, in: db)
                    try VMRepository.updateStatus(id, phase: .ready, conditions: [
                        Condition(type: .ready, status: true, reason: .contextOpen,
                                  message: "VFIO container open; guest memory maps when the first device attaches"),
                    ], observedGeneration: vm.meta.generation, in: db)
                    try AuditChain.append(AuditRecord(actor: .reconciler, action: .vmOpenContext, resourceType: "vm", resourceID: id,
                                                      outcome: .success), in: db)
                }
                succeeded(.vm(id))
                statistics.record("vm", succeeded: true)
            } catch let error as KernelError {
                statistics.record("vm", succeeded: false, error: error)
                let delay = error.isTransient || error.errno != nil ? await retry(.vm(id)) : nil
                try await store.write { db in
                    try OperationsJournal.finish(intent, succeeded: false, kernelCall: error.call, errno: error.errno?.name, in: db)
                    try VMRepository.updateStatus(id, phase: .failed, conditions: [
                        Condition(type: .ready, status: false, reason: .kernelError,
                                  message: "\(error)" + (delay.map { String(format: "; retrying in %.2f s", $0) } ?? "")),
                    ], observedGeneration: vm.meta.generation, in: db)
                    try AuditChain.append(AuditRecord(actor: .reconciler, action: .vmOpenContext, resourceType: "vm", resourceID: id,
                                                      outcome: .failed, after: JSONText.object([("error", JSONText.string("\(error)"))])), in: db)
                }
                return
            }
        }
        for address in devices { queue.add(.device(address)) }
    }

    /// Ready with no context yet: their guest memory passed the policy, and the context opens
    /// with the first device. One transaction for all; written only where the status says otherwise.
    private func markReadyWithoutContext(_ vms: [VMRecord]) async throws {
        let reason = ConditionReason.awaitingFirstDevice
        let changing = vms.filter { vm in
            vm.phase != .ready || vm.observedGeneration != vm.meta.generation
                || vm.conditions.first(where: { $0.type == .ready })?.reason != reason
        }
        if !changing.isEmpty {
            try await store.write { db in
                for vm in changing {
                    try VMRepository.updateStatus(vm.id, phase: .ready, conditions: [
                        Condition(type: .ready, status: true, reason: reason,
                                  message: "guest memory accepted; the IOMMU context opens when the first device is assigned"),
                    ], observedGeneration: vm.meta.generation, in: db)
                }
            }
        }
        for vm in vms { succeeded(.vm(vm.id)) }
        for _ in changing { statistics.record("vm", succeeded: true) }
    }

    /// The VM's guest memory as the executor maps it, each backing file located beneath its
    /// memory directory by the policy.
    func guestMemoryRegions(of vm: VMRecord) throws(GuestMemoryRefusal) -> [GuestMemoryRegion] {
        try vm.spec.memory.map { (region) throws(GuestMemoryRefusal) -> GuestMemoryRegion in
            GuestMemoryRegion(guestAddress: region.guestAddress, size: region.size, backingPath: region.backingPath,
                              backingOffset: region.backingOffset,
                              backingDirectory: try region.backingPath.map { (path) throws(GuestMemoryRefusal) in try options.memoryPolicy.locate(path).directory })
        }
    }

    private func tearDown(_ vm: VMRecord, bindings: [String], devices: [String]) async throws {
        // Bindings first: each unbinds itself when it sees its VM going.
        if !bindings.isEmpty {
            for binding in bindings { queue.add(.binding(binding)) }
            queue.add(.vm(vm.id), after: 0.01)
            return
        }
        // Then devices: unassign; each detaches (and goes back to its driver) on its own pass.
        if !devices.isEmpty || !kernel.devices(attachedTo: vm.id).isEmpty {
            try await store.write { db in
                for address in devices {
                    let device = try DeviceRepository.fetch(address, in: db)
                    try DeviceRepository.assign(address, to: nil, managed: device?.isManaged ?? false, actor: .reconciler, in: db)
                }
            }
            for address in Set(devices + kernel.devices(attachedTo: vm.id)) { queue.add(.device(address)) }
            queue.add(.vm(vm.id), after: 0.01)
            return
        }
        // Last, the context.
        if let context = kernel.context(vm.id) {
            kernel.withVM(vm.id) { context.close() }
            kernel.setContext(nil, for: vm.id)
            syncKeptDescriptors(of: vm.id)
        }
        try await store.write { db in
            try KernelObjectRepository.replace(vmID: vm.id, with: [:], in: db)
            try VMRepository.markDeleted(vm.id, in: db)
            try AuditChain.append(AuditRecord(actor: .reconciler, action: .vmTeardown, resourceType: "vm", resourceID: vm.id,
                                              outcome: .success, before: vm.auditJSON), in: db)
        }
    }
}
