import BinderyKernel
import Foundation

/// What the reconciler holds in the kernel: one IOMMU context per VM (a type1 container or an
/// iommufd, whichever binding path this host uses), which device is attached where, and which
/// binding is bound with which table. Lost with the process, by design: closing a container
/// releases everything, so a restart rebuilds from desired state.
final class KernelHost: @unchecked Sendable {
    let syscalls: any Syscalls
    let inventory: SysfsInventory
    let binder: DriverBinder
    /// How this host binds guest page tables, chosen once from what the kernel answered.
    let bindingPath: HostCapabilities.Mechanism

    /// A binding as it is in the kernel.
    struct BoundTable {
        var vmID: String
        var device: String
        var hostPASID: UInt32
        var bind: GuestPageTableBind
        var generation: Int
    }

    private let lock = NSLock()
    private var contexts: [String: any VMIOMMUContext] = [:]
    /// Per-VM locks while someone holds or waits for them (then dropped: a process that sees a
    /// million VMs come and go keeps none of theirs).
    private var vmLocks: [String: VMLock] = [:]
    private var attachments: [String: String] = [:]   // device → VM
    private var bound: [String: BoundTable] = [:]       // binding → table
    private var reserved: [String: (vmID: String, pasid: UInt32)] = [:]  // binding → PASID allocated, not bound

    /// A host over `syscalls` whose probe answered `capabilities` (nil: probe now). The binding
    /// path is `bindingPath`, else the probe's; no nesting anywhere means type1, whose contexts
    /// report binding as unavailable with the kernel's reason.
    init(syscalls: any Syscalls, sysfsRoot: String, capabilities: HostCapabilities? = nil, bindingPath: HostCapabilities.Mechanism? = nil) {
        self.syscalls = syscalls
        inventory = SysfsInventory(syscalls: syscalls, root: sysfsRoot)
        binder = DriverBinder(inventory: inventory)
        let probed = capabilities ?? CapabilityProbe(syscalls: syscalls, inventory: inventory).discover()
        self.bindingPath = bindingPath ?? probed.nesting.mechanism ?? .vfioType1Nesting
        currentCapabilities = probed
    }

    private let probeLock = NSLock()
    private var currentCapabilities: HostCapabilities   // guarded by lock

    /// What the kernel answered the last probe.
    var capabilities: HostCapabilities { lock.withLock { currentCapabilities } }

    /// Probes again when the last probe had no device on vfio-pci to ask with; called with a
    /// device freshly on vfio-pci and not yet opened. Nesting found through the other binding
    /// path than the one chosen at start is reported unsupported: contexts exist on this one.
    /// Returns the new answer when it changed.
    func refreshCapabilitiesIfAwaitingDevice() -> HostCapabilities? {
        guard capabilities.nesting.awaitingDevice else { return nil }
        return probeLock.withLock { () -> HostCapabilities? in
            guard capabilities.nesting.awaitingDevice else { return nil }
            var probed = CapabilityProbe(syscalls: syscalls, inventory: inventory).discover()
            if let mechanism = probed.nesting.mechanism, mechanism != bindingPath {
                probed.nesting = .unsupported("the kernel offers nesting through \(mechanism.rawValue), found once a device was on "
                    + "vfio-pci; this daemon chose \(bindingPath.rawValue) at start, when none was: restart it to bind through \(mechanism.rawValue)")
            }
            lock.withLock { currentCapabilities = probed }
            return probed
        }
    }

    /// A new IOMMU context for a VM on this host's binding path.
    func makeContext(memory: [GuestMemoryRegion]) throws(KernelError) -> any VMIOMMUContext {
        switch bindingPath {
        case .vfioType1Nesting: return try VMContext(syscalls: syscalls, inventory: inventory, memory: memory)
        case .iommufd: return try IOMMUFDVMContext(syscalls: syscalls, inventory: inventory, memory: memory)
        }
    }

    func context(_ vmID: String) -> (any VMIOMMUContext)? { lock.withLock { contexts[vmID] } }
    func setContext(_ context: (any VMIOMMUContext)?, for vmID: String) { lock.withLock { contexts[vmID] = context } }
    func attachment(of device: String) -> String? { lock.withLock { attachments[device] } }
    func setAttachment(_ vmID: String?, of device: String) { lock.withLock { attachments[device] = vmID } }
    func devices(attachedTo vmID: String) -> [String] { lock.withLock { attachments.filter { $0.value == vmID }.map(\.key) } }
    func boundTable(_ binding: String) -> BoundTable? { lock.withLock { bound[binding] } }
    func setBoundTable(_ table: BoundTable?, for binding: String) { lock.withLock { bound[binding] = table } }
    func bindings(onDevice device: String) -> [String] { lock.withLock { bound.filter { $0.value.device == device }.map(\.key) } }

    /// A PASID allocated for `binding` whose bind failed: reused by the retry, never leaked.
    func reservedPASID(for binding: String, vmID: String) -> UInt32? {
        lock.withLock { reserved[binding].flatMap { $0.vmID == vmID ? $0.pasid : nil } }
    }
    func setReservedPASID(_ pasid: UInt32?, for binding: String, vmID: String) {
        lock.withLock { reserved[binding] = pasid.map { (vmID, $0) } }
    }
    /// Drops reservations of `vmID` (its container released them).
    func dropReservations(of vmID: String) { lock.withLock { reserved = reserved.filter { $0.value.vmID != vmID } } }

    /// A VM's lock and how many callers hold or wait for it (guarded by `lock`).
    private final class VMLock {
        let lock = NSLock()
        var users = 0
    }

    /// Runs `body` holding the VM's lock: one kernel conversation per container at a time.
    func withVM<T>(_ vmID: String, _ body: () throws -> T) rethrows -> T {
        let vmLock = lock.withLock { () -> VMLock in
            let entry = vmLocks[vmID] ?? VMLock()
            vmLocks[vmID] = entry
            entry.users += 1
            return entry
        }
        vmLock.lock.lock()
        defer {
            vmLock.lock.unlock()
            lock.withLock {
                vmLock.users -= 1
                if vmLock.users == 0 { vmLocks[vmID] = nil }
            }
        }
        return try body()
    }

    /// VMs whose lock someone holds or waits for (for tests).
    var lockedVMCount: Int { lock.withLock { vmLocks.count } }

    private var kept: [String: [String: Int32]] = [:]   // VM → kept name → fd

    /// What is kept in the descriptor store for `vmID`, by name.
    func keptDescriptors(of vmID: String) -> [String: Int32] { lock.withLock { kept[vmID] ?? [:] } }
    func setKeptDescriptors(_ descriptors: [String: Int32], of vmID: String) {
        lock.withLock { kept[vmID] = descriptors.isEmpty ? nil : descriptors }
    }

    /// Closes every context, as the process's exit would: the kernel releases whatever no
    /// other descriptor (a VMM's, the fd store's) still holds.
    func closeAll() {
        let all = lock.withLock { () -> [any VMIOMMUContext] in
            defer { contexts.removeAll(); attachments.removeAll(); bound.removeAll(); reserved.removeAll(); kept.removeAll() }
            return Array(contexts.values)
        }
        all.forEach { $0.close() }
    }

    /// Ids of every bound binding.
    func boundIDs() -> [String] { lock.withLock { Array(bound.keys) } }

    /// Every binding bound now (for tests and the crash check).
    var boundCount: Int { lock.withLock { bound.count } }
}
