@testable import BinderyReconciler
import BinderyKernel
import BinderyStore
import Foundation
import GRDB
import XCTest

final class ReconcilerTests: ReconcilerTestCase {
    func testConvergesSeveralVMsDevicesAndBindingsFromScratch() async throws {
        let kernel = SimulatedKernel()
        let reconciler = try await makeReconciler(kernel)
        let store = reconciler.store
        let (vm1, _) = try await makeDesiredState(store, name: "vm1", device: "0000:3b:00.0", bindings: 5)
        try await makeDesiredState(store, name: "vm2", device: "0000:3c:00.0", bindings: 3)
        try await makeDesiredState(store, name: "vm3", device: "0000:3d:00.0", managed: true, bindings: 2)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()

        let all = try await bindings(store)
        XCTAssertEqual(all.count, 10)
        XCTAssertEqual(Set(all.map(\.phase)), [.bound])
        XCTAssertTrue(all.allSatisfy { $0.observedGeneration == $0.meta.generation && $0.hostPASID != nil })
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0").count, 5)
        XCTAssertEqual(kernel.boundTables(of: "0000:3d:00.0").count, 2)
        XCTAssertEqual(kernel.driver(of: "0000:3d:00.0"), "vfio-pci", "managed device rebound to vfio-pci")
        let (vm, devices, intents, pasidRows, verification, reconcilerEvents) = try await store.read { db in
            (try VMRepository.fetch(id: vm1, in: db)!, try DeviceRepository.all(in: db), try OperationsJournal.openIntents(in: db),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM host_pasids")!, try AuditChain.verify(in: db),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_events WHERE actor_identity = 'reconciler' AND action = 'binding.bind'")!)
        }
        XCTAssertEqual(vm.phase, .ready)
        XCTAssertEqual(devices.first { $0.address == "0000:3d:00.0" }?.originalDriver, "idxd")
        XCTAssertEqual(devices.filter { $0.phase == .attached }.count, 3)
        XCTAssertTrue(intents.isEmpty)
        XCTAssertEqual(pasidRows, 10)
        XCTAssertTrue(verification.isValid)
        XCTAssertEqual(reconcilerEvents, 10)
        await reconciler.stop()
    }

    func testAVMWithoutDevicesHoldsNothingInTheKernelUntilItsFirstDeviceIsAssigned() async throws {
        let kernel = SimulatedKernel()
        let reconciler = try await makeReconciler(kernel)
        let store = reconciler.store
        let admin = self.admin
        let filesBefore = kernel.openFileCount
        let vm = try await store.write { db in
            try VMRepository.create(VMSpec(name: "idle", memory: [MemoryRegion(guestAddress: 0, size: 1 << 30)]), actor: admin, in: db).id
        }
        reconciler.wake(.vm(vm))
        await reconciler.waitUntilIdle()
        let idle = try await store.read { db in try VMRepository.fetch(id: vm, in: db)! }
        XCTAssertEqual(idle.phase, .ready)
        XCTAssertEqual(idle.observedGeneration, idle.meta.generation)
        XCTAssertEqual(idle.conditions.map(\.reason), [.awaitingFirstDevice])
        XCTAssertNil(reconciler.kernel.context(vm))
        XCTAssertEqual(kernel.openFileCount, filesBefore, "no container, no descriptor")
        XCTAssertThrowsError(try reconciler.makeHandOff(for: vm))
        // Reconciling again writes nothing: the status already says so.
        let version = idle.meta.resourceVersion
        reconciler.wake(.vm(vm))
        await reconciler.waitUntilIdle()
        let again = try await store.read { db in try VMRepository.fetch(id: vm, in: db)! }
        XCTAssertEqual(again.meta.resourceVersion, version)

        try await store.write { db in try DeviceRepository.assign("0000:3b:00.0", to: vm, managed: false, actor: admin, in: db) }
        reconciler.wake(.device("0000:3b:00.0"))
        await reconciler.waitUntilIdle()
        let (ready, device, opens) = try await store.read { db in
            (try VMRepository.fetch(id: vm, in: db)!, try DeviceRepository.fetch("0000:3b:00.0", in: db)!,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_events WHERE action = 'vm.open-context' AND resource_id = ?", arguments: [vm])!)
        }
        XCTAssertEqual(ready.conditions.map(\.reason), [.contextOpen])
        XCTAssertEqual(device.phase, .attached)
        XCTAssertEqual(opens, 1)
        XCTAssertNotNil(reconciler.kernel.context(vm))
        let handOff = try reconciler.makeHandOff(for: vm)
        reconciler.closeHandOff(handOff)
        await reconciler.stop()
    }

    func testResyncsAndRestartsLeaveSettledVMsAloneAndRebuildTheOnesWithDevices() async throws {
        let firstKernel = SimulatedKernel()
        let first = try await makeReconciler(firstKernel)
        let store = first.store
        let admin = self.admin
        let idle = try await store.write { db in
            try (0..<50).map { index in
                try VMRepository.create(VMSpec(name: "idle\(index)", memory: [MemoryRegion(guestAddress: 0, size: 1 << 30)]), actor: admin, in: db).id
            }
        }
        let (busy, _) = try await makeDesiredState(store, name: "busy", device: "0000:3b:00.0", bindings: 2)
        try await first.resync()
        await first.waitUntilIdle()
        let versions = { () async throws -> [String: Int] in
            try await store.read { db in
                try Dictionary(uniqueKeysWithValues: (idle + [busy]).map { ($0, try VMRepository.fetch(id: $0, in: db)!.meta.resourceVersion) })
            }
        }
        let settled = try await versions()
        let unsettled = try await store.read { db in try VMRepository.unsettledIDs(in: db) }
        XCTAssertEqual(unsettled, [], "every VM is Ready at its generation")

        try await first.resync()
        await first.waitUntilIdle()
        let afterResync = try await versions()
        XCTAssertEqual(afterResync, settled, "a resync rewrites no settled VM")
        await first.stop()
        // A resync queues devices and bindings, and no settled VM: read by one not running.
        let looking = Reconciler(store: store, syscalls: SimulatedKernel(), options: first.options)
        try await looking.resync()
        let queued = looking.queue.queuedKeys
        XCTAssertTrue(queued.contains(.device("0000:3b:00.0")))
        XCTAssertEqual(queued.filter { if case .vm = $0 { return true } else { return false } }, [], "settled VMs are not queued")

        // A new process: the VM with a device had a context, which is gone, and is rebuilt;
        // the idle VMs held nothing and stay as they were.
        let secondKernel = SimulatedKernel()
        let second = try await makeReconciler(secondKernel, store: store)
        await second.waitUntilIdle()
        let afterRestart = try await versions()
        for id in idle { XCTAssertEqual(afterRestart[id], settled[id], "\(id) was not rewritten") }
        XCTAssertGreaterThan(afterRestart[busy]!, settled[busy]!)
        let (vm, idleVM) = try await store.read { db in (try VMRepository.fetch(id: busy, in: db)!, try VMRepository.fetch(id: idle[0], in: db)!) }
        XCTAssertEqual(vm.phase, .ready)
        XCTAssertEqual(vm.conditions.map(\.reason), [.contextOpen])
        XCTAssertEqual(idleVM.phase, .ready)
        XCTAssertEqual(idleVM.conditions.map(\.reason), [.awaitingFirstDevice])
        XCTAssertEqual(secondKernel.boundTables(of: "0000:3b:00.0").count, 2)
        XCTAssertNotNil(second.kernel.context(busy))
        XCTAssertNil(second.kernel.context(idle[0]))
        await second.stop()
    }

    func testABatchOfVMsAcceptsTheIdleOnesTogetherAndHandlesEachOtherOnItsOwn() async throws {
        let kernel = SimulatedKernel()
        let store = try Store(dataDirectory: directory)
        let admin = self.admin
        // All desired before the reconciler starts, so its first resync queues them together.
        let (idle, refused, deleting) = try await store.write { db in
            let idle = try (0..<300).map { index in
                try VMRepository.create(VMSpec(name: "idle\(index)", memory: [MemoryRegion(guestAddress: 0, size: 1 << 30)]), actor: admin, in: db).id
            }
            let refused = try VMRepository.create(VMSpec(name: "refused", memory: [
                MemoryRegion(guestAddress: 0, size: 1 << 21, backingPath: "/nowhere/guest-memory"),
            ]), actor: admin, in: db).id
            let deleting = try VMRepository.create(VMSpec(name: "deleting", memory: []), actor: admin, in: db).id
            try VMRepository.requestDeletion(deleting, actor: admin, in: db)
            return (idle, refused, deleting)
        }
        let writesBefore = store.writer.statistics.writes
        let reconciler = try await makeReconciler(kernel, store: store)
        await reconciler.waitUntilIdle()
        // One at a time, the 300 idle VMs were 300 status writes; batched, a few.
        let writes = store.writer.statistics.writes - writesBefore
        XCTAssertLessThan(writes, 40, "\(writes) writes")
        let vms = try await store.read { db in
            try Dictionary(uniqueKeysWithValues: (idle + [refused, deleting]).map { ($0, try VMRepository.fetch(id: $0, in: db)!) })
        }
        for id in idle {
            XCTAssertEqual(vms[id]?.phase, .ready, id)
            XCTAssertEqual(vms[id]?.conditions.map(\.reason), [.awaitingFirstDevice], id)
        }
        XCTAssertEqual(vms[refused]?.phase, .failed)
        XCTAssertEqual(vms[refused]?.conditions.map(\.reason), [.memoryPolicy])
        XCTAssertEqual(vms[deleting]?.phase, .deleted)
        await reconciler.stop()
    }

    func testEBUSYAndEINTRAreRetriedUntilBound() async throws {
        let kernel = SimulatedKernel(faults: try FaultPlan(parsing: "VFIO_IOMMU_NESTING_OP=script:EBUSY,EINTR,EBUSY;VFIO_IOMMU_PASID_REQUEST=script:ok,EINTR"))
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 4)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let all = try await bindings(reconciler.store)
        XCTAssertEqual(Set(all.map(\.phase)), [.bound])
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0").count, 4)
        XCTAssertEqual(kernel.allocatedPASIDCount, 4, "a PASID allocated for a failed bind was freed")
        let failures = try await reconciler.store.read { db in
            try String.fetchAll(db, sql: "SELECT errno_name FROM operations WHERE state = 'failed' ORDER BY id")
        }
        XCTAssertEqual(failures.sorted(), ["EBUSY", "EBUSY", "EINTR", "EINTR"])
        await reconciler.stop()
    }

    func testENOSPCFailsWithTheReasonAndANextRetryTime() async throws {
        let kernel = SimulatedKernel(faults: FaultPlan([.init(call: "VFIO_IOMMU_PASID_REQUEST", errno: .ENOSPC, trigger: .always)]))
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 1)
        try await reconciler.resync()
        try await waitFor("the binding fails") { try await self.bindings(reconciler.store).first?.phase == .failed }
        let binding = try await bindings(reconciler.store)[0]
        XCTAssertEqual(binding.lastErrorErrno, "ENOSPC")
        XCTAssertEqual(binding.lastErrorCall, "VFIO_IOMMU_PASID_REQUEST")
        XCTAssertNotNil(binding.nextRetryAt)
        XCTAssertTrue(binding.conditions.contains { $0.reason == .kernelError && $0.message.contains("ENOSPC") })
        // Once the PASID space frees up, the retry succeeds.
        kernel.faults.clear()
        try await waitFor("the binding recovers") { try await self.bindings(reconciler.store).first?.phase == .bound }
        await reconciler.stop()
    }

    func testKernelReportingSomethingMissingIsDegradedUntilItComesBack() async throws {
        let kernel = SimulatedKernel(faults: FaultPlan([.init(call: "VFIO_IOMMU_NESTING_OP", errno: .ENODEV, trigger: .always)]))
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 1)
        try await reconciler.resync()
        try await waitFor("the binding is degraded") { try await self.bindings(reconciler.store).first?.phase == .degraded }
        let degraded = try await bindings(reconciler.store)[0]
        XCTAssertTrue(degraded.conditions.contains { $0.reason == .kernelResourceMissing && $0.message.contains("ENODEV") })
        kernel.faults.clear()
        try await waitFor("the binding recovers") { try await self.bindings(reconciler.store).first?.phase == .bound }
        await reconciler.stop()
    }

    func testDeletingABindingUnbindsFreesItsPASIDAndLeavesATombstone() async throws {
        let kernel = SimulatedKernel()
        let reconciler = try await makeReconciler(kernel)
        let (_, ids) = try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 2)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let admin = self.admin
        _ = try await reconciler.store.write { db in try BindingRepository.requestDeletion(ids[0], actor: admin, in: db) }
        reconciler.wake(.binding(ids[0]))
        try await waitFor("the binding is a tombstone") {
            try await reconciler.store.read { db in try BindingRepository.fetch(ids[0], in: db)?.deletedAt != nil }
        }
        await reconciler.waitUntilIdle()
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0").count, 1)
        XCTAssertEqual(kernel.allocatedPASIDCount, 1, "the deleted binding's PASID was freed")
        let (tombstone, pasidRows) = try await reconciler.store.read { db in
            (try BindingRepository.fetch(ids[0], in: db)!, try Int.fetchOne(db, sql: "SELECT count(*) FROM host_pasids")!)
        }
        XCTAssertEqual(tombstone.phase, .deleted)
        XCTAssertNil(tombstone.hostPASID)
        XCTAssertEqual(pasidRows, 1)
        await reconciler.stop()
    }

    func testUnadvertisedCapabilityIsTerminalWithAClearReason() async throws {
        // Neither type1 nesting nor iommufd: the host where nothing can bind guest page tables.
        let kernel = SimulatedKernel(host: SimulatedHostProfile.type1Only.host)
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 1)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()  // terminal: nothing left to retry
        let binding = try await bindings(reconciler.store)[0]
        XCTAssertEqual(binding.phase, .failed)
        XCTAssertNil(binding.nextRetryAt)
        let condition = try XCTUnwrap(binding.conditions.first { $0.type == .bound })
        XCTAssertEqual(condition.reason, .capabilityMissing)
        XCTAssertTrue(condition.message.hasPrefix("terminal:") && condition.message.contains("VFIO_IOMMU_GET_INFO"), condition.message)
        XCTAssertEqual(kernel.allocatedPASIDCount, 0, "nothing was tried against the kernel")
        await reconciler.stop()
    }

    func testTenPercentRandomFaultsOverAThousandBindingsConvergeWithoutDuplicates() async throws {
        let kernel = SimulatedKernel(faults: try FaultPlan(parsing: "VFIO_IOMMU_NESTING_OP=EBUSY@rate:0.1;VFIO_IOMMU_PASID_REQUEST=EINTR@rate:0.1", seed: 42))
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "a", device: "0000:3b:00.0", bindings: 500)
        try await makeDesiredState(reconciler.store, name: "b", device: "0000:3c:00.0", bindings: 500)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let all = try await bindings(reconciler.store)
        XCTAssertEqual(all.count, 1000)
        XCTAssertEqual(Set(all.map(\.phase)), [.bound])
        let onA = kernel.boundTables(of: "0000:3b:00.0"), onB = kernel.boundTables(of: "0000:3c:00.0")
        XCTAssertEqual(onA.count + onB.count, 1000, "each binding bound exactly once")
        XCTAssertEqual(Set(all.compactMap(\.hostPASID)).count, 1000, "no host PASID used twice")
        XCTAssertEqual(kernel.allocatedPASIDCount, 1000, "no PASID leaked by a failed bind")
        XCTAssertGreaterThan(kernel.faults.injected.values.reduce(0, +), 100)
        await reconciler.stop()
    }

    func testReplacingThePageTableRebinds() async throws {
        let kernel = SimulatedKernel()
        let reconciler = try await makeReconciler(kernel)
        let (_, ids) = try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 1)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let admin = self.admin
        _ = try await reconciler.store.write { db in
            try BindingRepository.replacePageTable(ids[0], address: 0xabc000, addressWidth: 57, actor: admin, in: db)
        }
        reconciler.wake(.binding(ids[0]))
        try await waitFor("the new table is bound") { kernel.boundTables(of: "0000:3b:00.0").values.first?.pageTable == 0xabc000 }
        await reconciler.waitUntilIdle()
        let binding = try await bindings(reconciler.store)[0]
        XCTAssertEqual(binding.phase, .bound)
        XCTAssertEqual(binding.observedGeneration, 2)
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0").values.first?.addressWidth, 57)
        await reconciler.stop()
    }

    func testDeletingAVMTearsDownInReverseOrderAndRestoresTheManagedDriver() async throws {
        let kernel = SimulatedKernel()
        let reconciler = try await makeReconciler(kernel)
        let (vmID, _) = try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3d:00.0", managed: true, bindings: 3)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        XCTAssertEqual(kernel.driver(of: "0000:3d:00.0"), "vfio-pci")
        let admin = self.admin
        _ = try await reconciler.store.write { db in try VMRepository.requestDeletion(vmID, actor: admin, in: db) }
        reconciler.wake(.vm(vmID))
        try await waitFor("the VM is a tombstone") { try await reconciler.store.read { db in try VMRepository.isDeleted(vmID, in: db) } }
        await reconciler.waitUntilIdle()
        XCTAssertEqual(kernel.boundTables(of: "0000:3d:00.0"), [:])
        XCTAssertEqual(kernel.allocatedPASIDCount, 0)
        XCTAssertEqual(kernel.driver(of: "0000:3d:00.0"), "idxd", "managed device given back to its original driver")
        XCTAssertEqual(kernel.openFileCount, 0, "container, group and device fds closed")
        let (order, tombstones, verification) = try await reconciler.store.read { db in
            (try String.fetchAll(db, sql: "SELECT action FROM audit_events WHERE actor_identity = 'reconciler' AND action IN ('binding.unbind','device.detach','vm.teardown') ORDER BY seq"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM bindings WHERE phase = 'Deleted' AND deleted_at IS NOT NULL")!,
             try AuditChain.verify(in: db))
        }
        XCTAssertEqual(order, ["binding.unbind", "binding.unbind", "binding.unbind", "device.detach", "vm.teardown"])
        XCTAssertEqual(tombstones, 3)
        XCTAssertTrue(verification.isValid)
        XCTAssertEqual(reconciler.kernel.lockedVMCount, 0, "the torn-down VM's lock is gone")
        await reconciler.stop()
    }

    /// Found on a real kernel (#7): a managed device that had no driver goes back to none.
    func testManagedDeviceWithNoOriginalDriverIsLeftUnboundOnRelease() async throws {
        let kernel = SimulatedKernel()
        kernel.setDriver(nil, of: "0000:3e:00.0")
        let reconciler = try await makeReconciler(kernel)
        let (vmID, _) = try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3e:00.0", managed: true, bindings: 0)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        XCTAssertEqual(kernel.driver(of: "0000:3e:00.0"), "vfio-pci")
        let admin = self.admin
        _ = try await reconciler.store.write { db in try DeviceRepository.assign("0000:3e:00.0", to: nil, managed: true, actor: admin, in: db) }
        reconciler.wake(.device("0000:3e:00.0"))
        await reconciler.waitUntilIdle()
        XCTAssertNil(kernel.driver(of: "0000:3e:00.0"), "released to no driver, as it was found")
        _ = vmID
        await reconciler.stop()
    }

    func testAManagedDevicesOriginalDriverIsRecordedBeforeSysfsChangesEvenWhenTheRebindFails() async throws {
        // drivers_probe fails three times: the first attempt fails and so does giving the device back,
        // leaving it with no driver, as a crash between unbind and probe would. The retry must not
        // take "no driver" for the original.
        let kernel = SimulatedKernel(faults: try FaultPlan(parsing: "write drivers_probe=EIO@times:3"))
        let reconciler = try await makeReconciler(kernel)
        let (vmID, _) = try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3d:00.0", managed: true, bindings: 0)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let device = try await reconciler.store.read { db in try DeviceRepository.fetch("0000:3d:00.0", in: db)! }
        XCTAssertEqual(device.originalDriver, "idxd", "recorded before the first sysfs write, kept across the failed attempts")
        XCTAssertEqual(device.phase, .attached, "converged once the fault was lifted")
        XCTAssertEqual(kernel.driver(of: "0000:3d:00.0"), "vfio-pci")
        let admin = self.admin
        _ = try await reconciler.store.write { db in try DeviceRepository.assign("0000:3d:00.0", to: nil, managed: true, actor: admin, in: db) }
        reconciler.wake(.device("0000:3d:00.0"))
        await reconciler.waitUntilIdle()
        XCTAssertEqual(kernel.driver(of: "0000:3d:00.0"), "idxd", "given back to the driver it had before Bindery first took it")
        _ = vmID
        await reconciler.stop()
    }

    func testVanishedDeviceGoesDegradedAndRecovers() async throws {
        let kernel = SimulatedKernel()
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 2)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        kernel.setPresent(false, of: "0000:3b:00.0")
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        var device = try await reconciler.store.read { db in try DeviceRepository.fetch("0000:3b:00.0", in: db)! }
        XCTAssertEqual(device.phase, .degraded)
        XCTAssertTrue(device.conditions.contains { $0.reason == .deviceMissing })
        let degraded = try await bindings(reconciler.store)
        XCTAssertEqual(Set(degraded.map(\.phase)), [.degraded])

        kernel.setPresent(true, of: "0000:3b:00.0")
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        device = try await reconciler.store.read { db in try DeviceRepository.fetch("0000:3b:00.0", in: db)! }
        XCTAssertEqual(device.phase, .attached)
        let recovered = try await bindings(reconciler.store)
        XCTAssertEqual(Set(recovered.map(\.phase)), [.bound])
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0").count, 2)
        await reconciler.stop()
    }

    func testRestartRebuildsEverythingOnceFromTheJournalAndDesiredState() async throws {
        let firstKernel = SimulatedKernel()
        let first = try await makeReconciler(firstKernel)
        try await makeDesiredState(first.store, name: "vm", device: "0000:3b:00.0", bindings: 20)
        try await first.resync()
        await first.waitUntilIdle()
        await first.stop()
        // A crash between an intent and its result leaves an open intent behind.
        _ = try await first.store.write { db in
            try OperationsJournal.begin(resourceType: "binding", resourceID: "bnd-x", action: "bind", generation: 1, in: db)
        }
        // The new process has a fresh kernel: nothing of the old one survives.
        let secondKernel = SimulatedKernel()
        let second = try await makeReconciler(secondKernel, store: first.store)
        await second.waitUntilIdle()
        XCTAssertEqual(secondKernel.boundTables(of: "0000:3b:00.0").count, 20)
        let rebuilt = try await bindings(second.store)
        XCTAssertEqual(Set(rebuilt.map(\.phase)), [.bound])
        let (open, abandoned) = try await second.store.read { db in
            (try OperationsJournal.openIntents(in: db).count,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM operations WHERE detail LIKE '%abandoned%'")!)
        }
        XCTAssertEqual(open, 0)
        XCTAssertEqual(abandoned, 1)
        await second.stop()
    }
}
