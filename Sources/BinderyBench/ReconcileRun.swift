import ArgumentParser
import BinderyKernel
import BinderyReconciler
import BinderyStore
import Foundation
import GRDB

/// Runs the reconciler over a simulated kernel until the desired state has converged:
/// the child of the reconciler's crash test, and the 10,000-binding benchmark.
struct ReconcileRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Converge N bindings on the simulated kernel; print progress, then the time it took.",
        discussion: """
            With an empty --data-dir it first creates the desired state (not timed): VMs on the \
            simulated host's PASID-capable devices and N bindings spread over them. It then starts \
            the reconciler and prints `bound K` after each change of the count, and finally \
            `converged bindings=N kernel=M seconds=S … path=P` (M: bindings bound in this process's kernel; P: the binding path).
            """
    )

    @Option(name: .customLong("data-dir"), help: "Data directory.") var dataDirectory: String
    @Option(help: "Bindings to create when the database is empty.") var bindings = 10_000
    @Option(help: "Fault plan for the simulated kernel (CALL=ERRNO@...).") var faults = ""
    @Option(help: "Reconciler workers.") var workers = 4
    @Option(name: .customLong("simulated-host"), help: "Simulated host profile: type1-nesting (default), iommufd, iommufd-device-only, type1-only.")
    var simulatedHost = SimulatedHostProfile.type1Nesting.rawValue
    @Option(help: "Give up after this many seconds (the loop is always bounded).") var timeout = 120.0

    func run() async throws {
        let store = try Store(dataDirectory: dataDirectory)
        guard let profile = SimulatedHostProfile(rawValue: simulatedHost) else {
            throw ValidationError("--simulated-host must be one of \(SimulatedHostProfile.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let kernel = SimulatedKernel(host: profile.host, faults: try FaultPlan(parsing: faults))
        var options = ReconcilerOptions()
        options.workers = workers
        options.backoffBase = 0.005
        options.backoffCap = 0.5
        let reconciler = Reconciler(store: store, syscalls: kernel, options: options)
        let isEmpty = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bindings")! == 0 }
        if isEmpty {
            try await reconciler.resync()  // the inventory, so devices can be assigned
            try await createDesiredState(store, bindings: bindings)
        }
        let total = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bindings WHERE deleted_at IS NULL")! }
        let start = Date()
        try await reconciler.start()
        var last = -1
        while Date().timeIntervalSince(start) < timeout {
            let bound = try await store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bindings WHERE phase = 'Bound'")! }
            if bound != last {
                FileHandle.standardOutput.write(Data("bound \(bound)\n".utf8))
                last = bound
            }
            if bound == total { break }
            try await Task.sleep(nanoseconds: 2_000_000)
        }
        let seconds = Date().timeIntervalSince(start)
        await reconciler.waitUntilIdle()
        let summary = String(format: "converged bindings=%d kernel=%d seconds=%.3f per-binding-us=%.1f",
                             total, reconciler.boundBindingCount, seconds, seconds / Double(max(total, 1)) * 1e6)
        FileHandle.standardOutput.write(Data((summary + " path=\(reconciler.bindingPath.rawValue)\n").utf8))
        await reconciler.stop()
    }

    private func createDesiredState(_ store: Store, bindings: Int) async throws {
        let devices = ["0000:3b:00.0", "0000:3c:00.0", "0000:3d:00.0", "0000:3e:00.0"]
        let actor = AuditActor(identity: "bindery-bench")
        try await store.write { db in
            for (index, device) in devices.enumerated() {
                let vm = try VMRepository.create(VMSpec(name: "bench-\(index)", memory: [MemoryRegion(guestAddress: 0, size: 1 << 30)]),
                                                 actor: actor, in: db)
                try DeviceRepository.assign(device, to: vm.id, managed: true, actor: actor, in: db)
                for n in stride(from: index, to: bindings, by: devices.count) {
                    _ = try BindingRepository.create(BindingSpec(vmID: vm.id, deviceAddress: device, guestPASID: n / devices.count + 1,
                                                                 pageTableAddress: UInt64(n + 1) << 12, addressWidth: 48),
                                                     actor: actor, in: db)
                }
            }
        }
    }
}
