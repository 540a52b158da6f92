@testable import BinderyReconciler
import BinderyKernel
import BinderyStore
import Foundation
import GRDB
import XCTest

/// The reconciler on the iommufd binding path: one VT-d stage-1 HWPT per binding, attached at
/// its host PASID on a nesting parent over the VM's IOAS; and honest refusals on hosts that
/// cannot.
final class IOMMUFDReconcilerTests: ReconcilerTestCase {
    private func kernel(_ profile: SimulatedHostProfile, faults: String = "") throws -> SimulatedKernel {
        SimulatedKernel(host: profile.host, faults: try FaultPlan(parsing: faults, seed: 7))
    }

    func testTheProbeChoosesTheBindingPathFromWhatTheKernelAnswers() async throws {
        for (profile, path) in [(SimulatedHostProfile.iommufd, HostCapabilities.Mechanism.iommufd),
                                (.iommufdDeviceOnly, .iommufd), (.type1Nesting, .vfioType1Nesting), (.type1Only, .vfioType1Nesting)] {
            let reconciler = try await makeReconciler(try kernel(profile), store: try Store(dataDirectory: directory + "/\(profile.rawValue)"))
            XCTAssertEqual(reconciler.kernel.bindingPath, path, profile.rawValue)
            await reconciler.stop()
        }
    }

    func testAProbeWithoutADeviceOnVFIOIsAskedAgainOnceOneIsThere() async throws {
        var host = SimulatedHostProfile.iommufd.host
        for index in host.devices.indices where host.devices[index].driver == "vfio-pci" { host.devices[index].driver = "idxd" }
        let kernel = SimulatedKernel(host: host)
        let reconciler = try await makeReconciler(kernel)
        XCTAssertTrue(reconciler.capabilities.nesting.awaitingDevice)
        XCTAssertTrue(reconciler.capabilities.nesting.reason?.contains("no vfio-pci device with a VFIO cdev") ?? false,
                      reconciler.capabilities.nesting.reason ?? "")
        XCTAssertEqual(reconciler.bindingPath, .vfioType1Nesting, "nothing answered for iommufd at start")
        _ = try await makeDesiredState(reconciler.store, name: "a", device: "0000:3b:00.0", managed: true, bindings: 0)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let nesting = reconciler.capabilities.nesting
        XCTAssertFalse(nesting.awaitingDevice)
        XCTAssertFalse(nesting.supported, "the contexts are type1: binding through iommufd needs a restart")
        XCTAssertTrue(nesting.reason?.contains("offers nesting through iommufd") ?? false, nesting.reason ?? "")
        await reconciler.stop()
    }

    func testAnIOMMUWithoutNestingIsReportedWithTheKernelsAnswers() async throws {
        var host = SimulatedHostProfile.iommufd.host
        host.hardwareNesting = false   // QEMU's emulated VT-d
        let reconciler = try await makeReconciler(SimulatedKernel(host: host))
        let nesting = reconciler.capabilities.nesting
        XCTAssertFalse(nesting.supported)
        XCTAssertFalse(nesting.awaitingDevice)
        XCTAssertTrue(reconciler.capabilities.iommufd)
        let reason = nesting.reason ?? ""
        XCTAssertTrue(reason.contains("NEST 0") && reason.contains("IOMMU_HWPT_ALLOC_NEST_PARENT answered EOPNOTSUPP"), reason)
        await reconciler.stop()
    }

    func testBindingsConvergeAsStage1TablesAttachedPerPASID() async throws {
        let kernel = try kernel(.iommufd)
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "a", device: "0000:3b:00.0", bindings: 5)
        try await makeDesiredState(reconciler.store, name: "b", device: "0000:3d:00.0", managed: true, bindings: 3)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let all = try await bindings(reconciler.store)
        XCTAssertEqual(Set(all.map(\.phase)), [.bound], "\(all.map { ($0.phase, $0.conditions) })")
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3b:00.0").count, 5)
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3d:00.0").count, 3)
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0"), [:], "nothing went through the type1 nesting ABI")
        XCTAssertEqual(Set(all.filter { $0.spec.deviceAddress == "0000:3b:00.0" }.compactMap(\.hostPASID)).count, 5)
        await reconciler.stop()
    }

    func testTenPercentFaultsOverAThousandBindingsEachAttachedExactlyOnce() async throws {
        let kernel = try kernel(.iommufd, faults: "IOMMU_HWPT_ALLOC=EBUSY@rate:0.1;VFIO_DEVICE_ATTACH_IOMMUFD_PT=EBUSY@rate:0.1")
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "a", device: "0000:3b:00.0", bindings: 500)
        try await makeDesiredState(reconciler.store, name: "b", device: "0000:3c:00.0", bindings: 500)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let all = try await bindings(reconciler.store)
        XCTAssertEqual(all.count, 1000)
        XCTAssertEqual(Set(all.map(\.phase)), [.bound])
        let attached = kernel.pasidAttachments(of: "0000:3b:00.0").count + kernel.pasidAttachments(of: "0000:3c:00.0").count
        XCTAssertEqual(attached, 1000, "each binding attached exactly once")
        XCTAssertEqual(Set(all.map { "\($0.spec.deviceAddress)/\($0.hostPASID ?? -1)" }).count, 1000, "no host PASID used twice on a device")
        XCTAssertGreaterThan(kernel.faults.injected.values.reduce(0, +), 100)
        await reconciler.stop()
    }

    func testReplacingThePageTableSwapsTheStage1AtomicallyAndDeletionDetaches() async throws {
        let kernel = try kernel(.iommufd)
        let reconciler = try await makeReconciler(kernel)
        let (vmID, ids) = try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 2)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let before = kernel.pasidAttachments(of: "0000:3b:00.0")
        let admin = self.admin
        _ = try await reconciler.store.write { db in
            try BindingRepository.replacePageTable(ids[0], address: 0xabc000, addressWidth: 57, actor: admin, in: db)
        }
        reconciler.wake(.binding(ids[0]))
        await reconciler.waitUntilIdle()
        let after = kernel.pasidAttachments(of: "0000:3b:00.0")
        XCTAssertEqual(Set(after.keys), Set(before.keys), "the same host PASIDs")
        XCTAssertEqual(after.values.filter { !before.values.contains($0) }.count, 1, "one PASID now has a new stage-1")
        let replaced = try await bindings(reconciler.store).first { $0.id == ids[0] }
        XCTAssertEqual(replaced?.observedGeneration, 2)

        _ = try await reconciler.store.write { db in try BindingRepository.requestDeletion(ids[1], actor: admin, in: db) }
        reconciler.wake(.binding(ids[1]))
        await reconciler.waitUntilIdle()
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3b:00.0").count, 1)

        _ = try await reconciler.store.write { db in try VMRepository.requestDeletion(vmID, actor: admin, in: db) }
        reconciler.wake(.vm(vmID))
        try await waitFor("the VM is a tombstone") { try await reconciler.store.read { db in try VMRepository.isDeleted(vmID, in: db) } }
        await reconciler.waitUntilIdle()
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3b:00.0"), [:])
        XCTAssertEqual(kernel.openFileCount, 0, "iommufd and cdev fds closed")
        await reconciler.stop()
    }

    func testAHostWithoutPerPASIDAttachRefusesWithTheKernelsAnswer() async throws {
        let kernel = try kernel(.iommufdDeviceOnly)
        let reconciler = try await makeReconciler(kernel)
        try await makeDesiredState(reconciler.store, name: "vm", device: "0000:3b:00.0", bindings: 2)
        try await reconciler.resync()
        await reconciler.waitUntilIdle()
        let all = try await bindings(reconciler.store)
        XCTAssertEqual(Set(all.map(\.phase)), [.failed])
        for binding in all {
            let message = binding.conditions.first { $0.type == .bound }?.message ?? ""
            // As a real 6.12 answers: the PASID-capable HWPT is refused before any attach.
            XCTAssertTrue(message.hasPrefix("terminal:") && message.contains("IOMMU_HWPT_ALLOC_PASID") && message.contains("EOPNOTSUPP"), message)
        }
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3b:00.0"), [:])
        await reconciler.stop()
    }

    func testRestartRebuildsEveryBindingOnce() async throws {
        let store = try Store(dataDirectory: directory)
        let first = try await makeReconciler(try kernel(.iommufd), store: store)
        try await makeDesiredState(store, name: "vm", device: "0000:3b:00.0", bindings: 20)
        try await first.resync()
        await first.waitUntilIdle()
        await first.stop()
        let secondKernel = try kernel(.iommufd)   // the old process and its fds are gone
        let second = try await makeReconciler(secondKernel, store: store)
        await second.waitUntilIdle()
        XCTAssertEqual(secondKernel.pasidAttachments(of: "0000:3b:00.0").count, 20)
        let phases = Set(try await bindings(store).map(\.phase))
        XCTAssertEqual(phases, [.bound])
        await second.stop()
    }
}
