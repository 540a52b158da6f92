@testable import BinderyReconciler
import BinderyKernel
import BinderyStore
import Foundation
import XCTest

/// A restart that adopts the kernel objects the last process kept in a descriptor store (the
/// service manager's fd store), on the same simulated kernel: nothing unbound, nothing bound
/// again, no new host PASID.
final class AdoptionTests: ReconcilerTestCase {
    /// An fd store inside the simulated kernel: it holds its own `dup` of each kept descriptor.
    final class KeptDescriptors: DescriptorStore, @unchecked Sendable {
        let kernel: SimulatedKernel
        private let lock = NSLock()
        private var kept: [String: Int32] = [:]

        init(kernel: SimulatedKernel) { self.kernel = kernel }

        func keep(_ fd: Int32, name: String) {
            let copy = kernel.dup(fd)
            lock.withLock {
                if let old = kept[name] { _ = kernel.close(old) }
                kept[name] = copy
            }
        }

        func forget(name: String) {
            if let fd = lock.withLock({ kept.removeValue(forKey: name) }) { _ = kernel.close(fd) }
        }

        /// What a restarted process gets: its own duplicates, the store keeping its own.
        func handBack() -> [String: Int32] { lock.withLock { kept.mapValues { kernel.dup($0) } } }
        var names: Set<String> { lock.withLock { Set(kept.keys) } }
    }

    private func options(_ store: KeptDescriptors, adopting: [String: Int32] = [:]) -> ReconcilerOptions {
        var options = ReconcilerOptions()
        options.workers = 2
        options.backoffBase = 0.001
        options.backoffCap = 0.02
        options.resyncInterval = .seconds(3600)
        options.descriptorStore = store
        options.adoptedDescriptors = adopting
        return options
    }

    /// The process dies (its descriptors close; the store's keep every object), `survived`
    /// looks at the kernel, and a new process adopts what the store hands back. Returns it and
    /// the kernel's call counts from before it started. The capability probe (its own
    /// container, on a free group) is skipped: it is not what the tests count.
    private func dieAndAdopt(_ first: Reconciler, kernel: SimulatedKernel, kept: KeptDescriptors, store: Store,
                             survived: () -> Void) async throws -> (Reconciler, [String: Int]) {
        await first.stop()
        first.closeKernelObjects()
        survived()
        let callsBefore = kernel.callCounts
        var restarted = options(kept, adopting: kept.handBack())
        restarted.capabilities = first.capabilities
        let second = Reconciler(store: store, syscalls: kernel, options: restarted)
        try await second.start()
        await second.waitUntilIdle()
        return (second, callsBefore)
    }

    /// Every binding Bound on the host PASID it had in `before`, and none of `calls` made again.
    private func assertTakenOver(_ store: Store, before: [BindingRecord], kernel: SimulatedKernel, callsBefore: [String: Int],
                                 notRepeating calls: [String]) async throws -> [BindingRecord] {
        let after = try await bindings(store)
        XCTAssertEqual(Set(after.map(\.phase)), [.bound])
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: after.map { ($0.id, $0.hostPASID) }),
                       Dictionary(uniqueKeysWithValues: before.map { ($0.id, $0.hostPASID) }), "no new host PASID")
        for name in calls {
            XCTAssertEqual(kernel.callCounts[name, default: 0], callsBefore[name, default: 0], "\(name) was called again")
        }
        return after
    }

    /// Calls that change the kernel (the ones an adoption must not repeat).
    private static let changing = ["open", "VFIO_SET_IOMMU", "VFIO_GROUP_SET_CONTAINER", "VFIO_GROUP_GET_DEVICE_FD", "VFIO_IOMMU_MAP_DMA",
                                   "VFIO_IOMMU_UNMAP_DMA", "VFIO_IOMMU_PASID_REQUEST", "VFIO_IOMMU_NESTING_OP", "VFIO_GROUP_UNSET_CONTAINER"]

    func testARestartAdoptsTheKeptObjectsWithNoKernelCallRepeated() async throws {
        let kernel = SimulatedKernel(host: SimulatedHostProfile.type1Nesting.host)
        let kept = KeptDescriptors(kernel: kernel)
        let store = try Store(dataDirectory: directory)
        let first = Reconciler(store: store, syscalls: kernel, options: options(kept))
        try await first.start()
        let (vmA, _) = try await makeDesiredState(store, name: "a", device: "0000:3b:00.0", bindings: 5)
        _ = try await makeDesiredState(store, name: "b", device: "0000:3d:00.0", managed: true, bindings: 3)
        try await first.resync()
        await first.waitUntilIdle()
        let before = try await bindings(store)
        XCTAssertEqual(Set(before.map(\.phase)), [.bound])
        XCTAssertTrue(kept.names.contains("vm.\(vmA).container"), "\(kept.names)")
        XCTAssertTrue(kept.names.contains("vm.\(vmA).device.0000-3b-00.0"), "\(kept.names)")
        let tablesBefore = [kernel.boundTables(of: "0000:3b:00.0"), kernel.boundTables(of: "0000:3d:00.0")]

        let (second, callsBefore) = try await dieAndAdopt(first, kernel: kernel, kept: kept, store: store) {
            XCTAssertEqual([kernel.boundTables(of: "0000:3b:00.0"), kernel.boundTables(of: "0000:3d:00.0")], tablesBefore)
        }
        let after = try await assertTakenOver(store, before: before, kernel: kernel, callsBefore: callsBefore, notRepeating: Self.changing)
        XCTAssertEqual([kernel.boundTables(of: "0000:3b:00.0"), kernel.boundTables(of: "0000:3d:00.0")], tablesBefore)
        let devices = try await store.read { db in try DeviceRepository.assigned(to: vmA, in: db) }
        XCTAssertEqual(devices.map(\.phase), [.attached])

        // The adopted context is managed as before: a deletion unbinds through it.
        let victim = after.first { $0.spec.deviceAddress == "0000:3b:00.0" }!
        let admin = self.admin
        _ = try await store.write { db in try BindingRepository.requestDeletion(victim.id, actor: admin, in: db) }
        second.wake(.binding(victim.id))
        await second.waitUntilIdle()
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0").count, 4)
        await second.stop()
    }

    func testKeptObjectsThatDoNotCheckOutAreClosedAndRebuilt() async throws {
        let kernel = SimulatedKernel(host: SimulatedHostProfile.type1Nesting.host)
        let kept = KeptDescriptors(kernel: kernel)
        let store = try Store(dataDirectory: directory)
        let first = Reconciler(store: store, syscalls: kernel, options: options(kept))
        try await first.start()
        let (vm, _) = try await makeDesiredState(store, name: "a", device: "0000:3b:00.0", bindings: 2)
        try await first.resync()
        await first.waitUntilIdle()
        await first.stop()
        first.closeKernelObjects()
        // Only the container comes back: the device's group is missing, so nothing is adopted.
        var handed = kept.handBack()
        for name in handed.keys where name != "vm.\(vm).container" { _ = kernel.close(handed.removeValue(forKey: name)!) }
        for name in kept.names { kept.forget(name: name) }   // the old objects go with the last references
        let second = Reconciler(store: store, syscalls: kernel, options: options(kept, adopting: handed))
        try await second.start()
        await second.waitUntilIdle()
        let after = try await bindings(store)
        XCTAssertEqual(Set(after.map(\.phase)), [.bound], "\(after.map { ($0.phase, $0.conditions) })")
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0").count, 2)
        await second.stop()
    }

    func testWithoutAStoreAGroupAVMMStillHoldsIsReportedNotFought() async throws {
        let kernel = SimulatedKernel(host: SimulatedHostProfile.type1Nesting.host)
        let store = try Store(dataDirectory: directory)
        var plain = ReconcilerOptions()
        plain.workers = 2
        plain.backoffBase = 0.001
        plain.backoffCap = 0.02
        plain.resyncInterval = .seconds(3600)
        let first = Reconciler(store: store, syscalls: kernel, options: plain)
        try await first.start()
        let (vm, _) = try await makeDesiredState(store, name: "a", device: "0000:3b:00.0", bindings: 0)
        try await first.resync()
        await first.waitUntilIdle()
        // A VMM received the device (a duplicate of its fd) and is recorded as the holder.
        let handOff = try first.makeHandOff(for: vm)
        let vmmDevice = kernel.dup(try XCTUnwrap(first.kernel.context(vm) as? VMContext).keptDescriptors["device.0000-3b-00.0"]!)
        first.closeHandOff(handOff)
        let admin = self.admin
        let token = try await store.write { db in try AttachmentRepository.issue(vmID: vm, lifetime: 60, actor: admin, in: db) }.token
        _ = try await store.write { db in
            try AttachmentRepository.redeem(token: token, vmID: vm, pid: getpid(), uid: getuid(), gid: getgid(), isAlive: { _ in true }, in: db)
        }
        await first.stop()
        first.closeKernelObjects()

        let second = Reconciler(store: store, syscalls: kernel, options: plain)
        try await second.start()
        await second.waitUntilIdle()
        let opensAfterFirstTry = kernel.callCounts["open", default: 0]
        let (vmRecord, device) = try await store.read { db in
            (try VMRepository.fetch(id: vm, in: db), try DeviceRepository.fetch("0000:3b:00.0", in: db))
        }
        XCTAssertEqual(vmRecord?.phase, .degraded)
        XCTAssertEqual(device?.phase, .degraded)
        let message = vmRecord?.conditions.first?.message ?? ""
        XCTAssertTrue(message.contains("held by the VMM (pid \(getpid())"), message)
        XCTAssertEqual(vmRecord?.conditions.first?.reason, .heldByVMM)
        await second.waitUntilIdle()
        XCTAssertEqual(kernel.callCounts["open", default: 0], opensAfterFirstTry, "no retry loop on EBUSY")

        // The VMM lets go: the next pass attaches the device and the VM is Ready again.
        _ = kernel.close(vmmDevice)
        _ = try await store.write { db in try AttachmentRepository.release(vmID: vm, pid: getpid(), reason: "test", in: db) }
        try await second.resync()
        await second.waitUntilIdle()
        let healed = try await store.read { db in try VMRepository.fetch(id: vm, in: db)?.phase }
        XCTAssertEqual(healed, .ready)
        await second.stop()
    }

    func testOnIOMMUFDARestartAdoptsTheIOMMUFDCdevsAndStage1TablesByTheirRecordedIDs() async throws {
        let kernel = SimulatedKernel(host: SimulatedHostProfile.iommufd.host)
        let kept = KeptDescriptors(kernel: kernel)
        let store = try Store(dataDirectory: directory)
        let first = Reconciler(store: store, syscalls: kernel, options: options(kept))
        try await first.start()
        XCTAssertEqual(first.bindingPath, .iommufd)
        let (vm, _) = try await makeDesiredState(store, name: "a", device: "0000:3b:00.0", bindings: 4)
        try await first.resync()
        await first.waitUntilIdle()
        let before = try await bindings(store)
        XCTAssertEqual(Set(before.map(\.phase)), [.bound])
        XCTAssertTrue(kept.names.isSuperset(of: ["vm.\(vm).iommufd", "vm.\(vm).cdev.0000-3b-00.0"]), "\(kept.names)")
        let recorded = try await store.read { db in try KernelObjectRepository.fetch(vmID: vm, in: db) }
        XCTAssertEqual(recorded.keys.filter { $0.hasPrefix("stage1.0000:3b:00.0.") }.count, 4, "\(recorded)")
        let attachments = kernel.pasidAttachments(of: "0000:3b:00.0")

        let (second, callsBefore) = try await dieAndAdopt(first, kernel: kernel, kept: kept, store: store) {
            XCTAssertEqual(kernel.pasidAttachments(of: "0000:3b:00.0"), attachments, "the store's copies keep everything")
        }
        let after = try await assertTakenOver(store, before: before, kernel: kernel, callsBefore: callsBefore, notRepeating: [
            "open", "IOMMU_IOAS_ALLOC", "IOMMU_IOAS_MAP", "IOMMU_HWPT_ALLOC", "VFIO_DEVICE_BIND_IOMMUFD",
            "VFIO_DEVICE_ATTACH_IOMMUFD_PT", "VFIO_DEVICE_DETACH_IOMMUFD_PT", "IOMMU_DESTROY"])
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3b:00.0"), attachments)

        // The adopted stage-1 ids are the real ones: deleting a binding detaches and destroys it.
        let victim = after[0]
        let admin = self.admin
        _ = try await store.write { db in try BindingRepository.requestDeletion(victim.id, actor: admin, in: db) }
        second.wake(.binding(victim.id))
        await second.waitUntilIdle()
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3b:00.0").count, 3)
        XCTAssertEqual(kernel.callCounts["IOMMU_DESTROY", default: 0], callsBefore["IOMMU_DESTROY", default: 0] + 1)
        let remaining = try await store.read { db in try KernelObjectRepository.fetch(vmID: vm, in: db) }
        XCTAssertEqual(remaining.keys.filter { $0.hasPrefix("stage1.") }.count, 3)
        await second.stop()
    }
}
