import BinderyKernel
import BinderyStore
import Foundation

/// Drives the kernel toward the desired state in the store. Level-based: work items are
/// resource keys; each pass compares desired with actual and acts; a periodic resync catches
/// drift and missed wake-ups. Every kernel action has an intent row in the operations journal
/// before it and its result after, and an audit event with actor `reconciler`.
public final class Reconciler: @unchecked Sendable {
    /// The store holding desired state and status.
    public let store: Store
    /// Options.
    public let options: ReconcilerOptions
    let kernel: KernelHost
    let queue = WorkQueue()
    /// What it has done so far, for metrics.
    public let statistics = ReconcileStatistics()
    private var tasks: [Task<Void, Never>] = []   // guarded by attemptsLock
    private let attemptsLock = NSLock()
    private var attempts: [ResourceKey: Int] = [:]
    let logger: @Sendable (String) -> Void

    /// A reconciler over `store`, driving the kernel behind `syscalls`.
    public init(store: Store, syscalls: any Syscalls, options: ReconcilerOptions = ReconcilerOptions(),
                logger: @escaping @Sendable (String) -> Void = { _ in }) {
        self.store = store
        self.options = options
        self.logger = logger
        kernel = KernelHost(syscalls: syscalls, sysfsRoot: options.sysfsRoot, capabilities: options.capabilities,
                            bindingPath: options.bindingPath)
    }

    /// Recovers from whatever the last process left (see `recoverAfterRestart`), resyncs (the
    /// inventory; every device, live binding and VM with work outstanding), and starts the
    /// workers and the resync timer.
    public func start() async throws {
        try await recoverAfterRestart()
        try await resync()
        var started: [Task<Void, Never>] = []
        for _ in 0..<options.workers {
            started.append(Task { [weak self] in await self?.work() })
        }
        let interval = options.resyncInterval
        started.append(Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                try? await self?.resync()
            }
        })
        attemptsLock.withLock { tasks = started }
    }

    /// Stops the workers (kernel state stays until the process exits or `closeKernelObjects`).
    public func stop() async {
        queue.close()
        let running = attemptsLock.withLock { () -> [Task<Void, Never>] in
            defer { tasks.removeAll() }
            return tasks
        }
        running.forEach { $0.cancel() }
    }

    /// Closes every kernel object this reconciler holds, as its process's exit would (for
    /// in-process restarts in tests and tools; call after `stop()`).
    public func closeKernelObjects() { kernel.closeAll() }

    /// True between `start()` and `stop()`.
    public var isRunning: Bool { attemptsLock.withLock { !tasks.isEmpty } }

    /// Asks for `key` to be reconciled soon (the API calls this after each write). The key is
    /// queued when this returns, so a `waitUntilIdle` that follows waits for its work.
    public func wake(_ key: ResourceKey) {
        queue.add(key)
    }

    /// True while the workers run and none has been stuck on one piece of work for `limit`
    /// (what the service manager's watchdog is fed from).
    public func isHealthy(stallLimit limit: Duration) -> Bool {
        isRunning && !queue.isStalled(after: limit)
    }

    /// Returns once nothing is queued, running or waiting to retry.
    public func waitUntilIdle() async {
        await queue.waitUntilIdle()
    }

    /// What the kernel answered the last capability probe (asked again once a device is on
    /// vfio-pci when the first probe had none to ask with).
    public var capabilities: HostCapabilities { kernel.capabilities }

    /// How this host binds guest page tables (type1 nesting or iommufd).
    public var bindingPath: HostCapabilities.Mechanism { kernel.bindingPath }

    /// Bindings bound in the kernel now.
    public var boundBindingCount: Int { kernel.boundCount }

    /// Reads the inventory into the store and queues every device, every live binding, and
    /// every VM with work outstanding. A settled VM is not queued: its kernel state is its
    /// devices' and bindings' (queued), and one awaiting its first device has none. So a
    /// resync costs what can drift, not the number of VMs.
    public func resync() async throws {
        let inventory = kernel.inventory, policy = options.devicePolicy
        let snapshots = try inventory.devices().map { device in
            DeviceSnapshot(device, refusal: policy.refusal(for: device, hostUse: inventory.hostUse(of: device.address)))
        }
        try await store.write { db in try DeviceRepository.syncInventory(snapshots, in: db) }
        let keys = try await store.read { db -> [ResourceKey] in
            let vms = try VMRepository.unsettledIDs(in: db).map(ResourceKey.vm)
            let devices = try DeviceRepository.all(in: db).map { ResourceKey.device($0.address) }
            let bindings = try BindingRepository.liveIDs(in: db).map(ResourceKey.binding)
            return vms + devices + bindings
        }
        for key in keys { queue.add(key) }
    }

    private func work() async {
        while let batch = await queue.take(limit: options.bindingBatchSize) {
            do {
                switch batch[0] {
                case .vm: try await reconcileVMs(batch.compactMap { if case let .vm(id) = $0 { return id } else { return nil } })
                case let .device(address): try await reconcileDevice(address)
                case .binding:
                    try await reconcileBindings(batch.compactMap { if case let .binding(id) = $0 { return id } else { return nil } })
                }
            } catch {
                logger("reconcile \(batch[0]) failed: \(error); retrying")
                for key in batch { await retry(key) }
            }
            queue.done(batch)
        }
    }

    /// Schedules `key` again after a backoff that grows with its consecutive failures.
    @discardableResult
    func retry(_ key: ResourceKey) async -> Double {
        let attempt = attemptsLock.withLock { () -> Int in
            attempts[key, default: 0] += 1
            return attempts[key]!
        }
        let delay = options.backoff(attempt: attempt)
        queue.add(key, after: delay)
        return delay
    }

    /// Forgets `key`'s failures after a success.
    func succeeded(_ key: ResourceKey) {
        attemptsLock.withLock { _ = attempts.removeValue(forKey: key) }
    }

    func log(_ line: String) { logger(line) }
}

extension DeviceSnapshot {
    /// The store's copy of a sysfs device, with the device policy's verdict.
    init(_ device: PCIDevice, refusal: DevicePolicy.Refusal? = nil) {
        self.init(address: device.address, vendorID: Int(device.vendorID), deviceID: Int(device.deviceID),
                  classCode: Int(device.classCode), iommuGroup: device.iommuGroup, driver: device.driver, numaNode: device.numaNode,
                  pasidSupported: device.capabilities.pasidSupported, pasidWidth: device.capabilities.pasidWidth,
                  atsSupported: device.capabilities.atsSupported, priSupported: device.capabilities.priSupported,
                  refusalRule: refusal?.rule, refusalReason: refusal?.reason)
    }
}
