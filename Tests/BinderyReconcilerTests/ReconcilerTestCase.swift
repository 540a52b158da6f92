@testable import BinderyReconciler
import BinderyKernel
import BinderyStore
import Foundation
import GRDB
import XCTest

/// What every reconciler test needs: a data directory, an admin actor, a reconciler over a
/// simulated kernel, desired state, and waiting for states.
class ReconcilerTestCase: XCTestCase {
    var directory: String!
    let admin = AuditActor(identity: "spiffe://test/admin", role: "admin")

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "bindery-reconciler-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func makeReconciler(_ kernel: SimulatedKernel, store: Store? = nil, bindingPath: HostCapabilities.Mechanism? = nil) async throws -> Reconciler {
        var options = ReconcilerOptions()
        options.bindingPath = bindingPath
        options.workers = 2
        options.backoffBase = 0.001
        options.backoffCap = 0.02
        options.resyncInterval = .seconds(3600)
        let reconciler = Reconciler(store: try store ?? Store(dataDirectory: directory), syscalls: kernel, options: options)
        try await reconciler.start()
        return reconciler
    }

    /// A VM with 1 GiB of memory, `device` assigned, and `count` bindings (guest PASIDs 1...count).
    @discardableResult
    func makeDesiredState(_ store: Store, name: String, device: String, managed: Bool = false, bindings count: Int) async throws -> (String, [String]) {
        let admin = self.admin
        return try await store.write { db in
            let vm = try VMRepository.create(VMSpec(name: name, memory: [MemoryRegion(guestAddress: 0, size: 1 << 30)]), actor: admin, in: db)
            try DeviceRepository.assign(device, to: vm.id, managed: managed, actor: admin, in: db)
            let ids = try (1...max(count, 1)).prefix(count).map { pasid in
                try BindingRepository.create(BindingSpec(vmID: vm.id, deviceAddress: device, guestPASID: pasid,
                                                         pageTableAddress: UInt64(pasid) << 12, addressWidth: 48,
                                                         formatFields: #"{"sre":true}"#), actor: admin, in: db).id
            }
            return (vm.id, ids)
        }
    }

    func bindings(_ store: Store) async throws -> [BindingRecord] {
        try await store.read { db in try BindingRepository.live(in: db) }
    }

    func waitFor(_ what: String, timeout: Double = 20, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try await !condition() {
            if Date() > deadline { return XCTFail("never happened: \(what)") }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }
}
