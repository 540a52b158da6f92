import BinderyKernel
import BinderyStore

extension Reconciler {
    /// Makes the descriptor store hold exactly `vmID`'s context's kept descriptors now: new
    /// ones kept, gone or replaced ones forgotten. Called after each change to the context.
    func syncKeptDescriptors(of vmID: String) {
        guard let store = options.descriptorStore else { return }
        let current: [String: Int32] = kernel.context(vmID).map { context in
            kernel.withVM(vmID) {
                Dictionary(uniqueKeysWithValues: context.keptDescriptors.map { (KeptName.make(vmID: vmID, $0.key), $0.value) })
            }
        } ?? [:]
        let previous = kernel.keptDescriptors(of: vmID)
        for (name, fd) in previous where current[name] != fd { store.forget(name: name) }
        for (name, fd) in current where previous[name] != fd { store.keep(fd, name: name) }
        kernel.setKeptDescriptors(current, of: vmID)
    }

    /// The object ids of each VM in `vmIDs` to record beside its kept descriptors (nil when
    /// nothing is kept: then nothing is recorded).
    func kernelObjects(of vmIDs: some Sequence<String>) -> [String: [String: UInt32]]? {
        guard options.descriptorStore != nil, kernel.bindingPath == .iommufd else { return nil }
        var all: [String: [String: UInt32]] = [:]
        for vmID in vmIDs {
            all[vmID] = kernel.context(vmID).map { context in kernel.withVM(vmID) { context.objectIDs } } ?? [:]
        }
        return all
    }

    /// Records `objects` (from `kernelObjects(of:)`) in the transaction `db`.
    static func record(_ objects: [String: [String: UInt32]]?, in db: StoreTransaction) throws {
        for (vmID, ids) in objects ?? [:] { try KernelObjectRepository.replace(vmID: vmID, with: ids, in: db) }
    }

    /// Drops `address`'s device descriptor (or cdev) from the store before the device is
    /// detached: the store's copy keeps the device open, and the kernel refuses to take its
    /// group out of the container while any device fd is open (EBUSY).
    func dropKeptDevice(_ address: String, of vmID: String) {
        guard let store = options.descriptorStore else { return }
        var kept = kernel.keptDescriptors(of: vmID)
        for kind in ["device", "cdev"] {
            let name = KeptName.make(vmID: vmID, DescriptorName.make(kind, device: address))
            guard kept.removeValue(forKey: name) != nil else { continue }
            store.forget(name: name)
        }
        kernel.setKeptDescriptors(kept, of: vmID)
    }

    /// Adopts the VMs whose descriptors the last process kept (`options.adoptedDescriptors`):
    /// each VM's context is checked with the kernel and taken over as it is, its devices count
    /// as attached and its bound bindings as bound, with no kernel call repeated. A VM whose
    /// descriptors do not check out (or that is gone) has them closed and is rebuilt.
    /// Returns the VMs adopted.
    func adoptKeptDescriptors() async throws -> Set<String> {
        var byVM: [String: [String: Int32]] = [:]
        for (name, fd) in options.adoptedDescriptors {
            guard let (vmID, what) = KeptName.parse(name) else {
                log("adopt: closing descriptor \(name): not one this daemon keeps")
                _ = kernel.syscalls.close(fd)
                continue
            }
            byVM[vmID, default: [:]][what] = fd
        }
        var adopted: Set<String> = []
        for (vmID, descriptors) in byVM.sorted(by: { $0.key < $1.key }) {
            let state = try await store.read { db -> (VMRecord, [BindingRecord])? in
                guard let vm = try VMRepository.fetch(id: vmID, in: db), try !VMRepository.isDeleted(vmID, in: db) else { return nil }
                return (vm, try BindingRepository.live(vmID: vmID, in: db))
            }
            guard let (vm, bindings) = state else {
                log("adopt: closing \(descriptors.count) descriptor(s) of \(vmID): the VM is gone")
                descriptors.values.forEach { _ = kernel.syscalls.close($0) }
                options.descriptorStore.map { store in descriptors.keys.forEach { store.forget(name: KeptName.make(vmID: vmID, $0)) } }
                continue
            }
            let context: any VMIOMMUContext
            do {
                let regions = try guestMemoryRegions(of: vm)
                switch (kernel.bindingPath, descriptors["iommufd"] != nil) {
                case (.vfioType1Nesting, false):
                    context = try VMContext.adopting(descriptors, syscalls: kernel.syscalls, inventory: kernel.inventory, memory: regions)
                case (.iommufd, true):
                    let ids = try await store.read { db in try KernelObjectRepository.fetch(vmID: vmID, in: db) }
                    context = try IOMMUFDVMContext.adopting(descriptors, objectIDs: ids, syscalls: kernel.syscalls,
                                                            inventory: kernel.inventory, memory: regions)
                default:
                    descriptors.values.forEach { _ = kernel.syscalls.close($0) }
                    throw KernelError.unexpected(call: "adopt", detail: "kept descriptors \(descriptors.keys.sorted()) do not fit this host's binding path \(kernel.bindingPath.rawValue)")
                }
            } catch {
                log("adopt: \(vmID) is rebuilt instead: \(error)")
                options.descriptorStore.map { store in descriptors.keys.forEach { store.forget(name: KeptName.make(vmID: vmID, $0)) } }
                continue
            }
            kernel.setContext(context, for: vmID)
            kernel.setKeptDescriptors(Dictionary(uniqueKeysWithValues: descriptors.map { (KeptName.make(vmID: vmID, $0.key), $0.value) }), of: vmID)
            // Every device in the kept context is attached to it, assigned still or not: the
            // device pass detaches the ones no longer assigned.
            let attached = Set(context.attachedDevices)
            for address in attached { kernel.setAttachment(vmID, of: address) }
            var boundCount = 0
            for binding in bindings where binding.phase == .bound && attached.contains(binding.spec.deviceAddress) {
                guard let pasid = binding.hostPASID else { continue }
                kernel.setBoundTable(KernelHost.BoundTable(vmID: vmID, device: binding.spec.deviceAddress, hostPASID: UInt32(pasid),
                                                           bind: guestTable(binding, hostPASID: UInt32(pasid)),
                                                           generation: binding.observedGeneration), for: binding.id)
                boundCount += 1
            }
            adopted.insert(vmID)
            log("adopt: \(vmID) taken over as it is in the kernel: \(attached.count) device(s), \(boundCount) binding(s) bound")
        }
        return adopted
    }
}
