import BinderyKernel

/// How the reconciler works.
public struct ReconcilerOptions: Sendable {
    /// Concurrent workers.
    public var workers = 4
    /// Bindings reconciled per batch (one transaction for their intents, one for their results),
    /// and VMs read per batch (one transaction accepts those with no device).
    public var bindingBatchSize = 512
    /// Resync interval (the inventory, every device and live binding, and every VM with work
    /// outstanding); catches drift and missed wake-ups.
    public var resyncInterval: Duration = .seconds(30)
    /// First retry delay after a failure.
    public var backoffBase: Double = 0.02
    /// Longest retry delay.
    public var backoffCap: Double = 30
    /// Where sysfs is.
    public var sysfsRoot = "/sys"
    /// What the kernel answered a capability probe at start (nil: probe when starting).
    public var capabilities: HostCapabilities?
    /// Told each conclusive answer of a capability probe asked again (to remember it).
    public var capabilitiesLearned: (@Sendable (HostCapabilities) -> Void)?
    /// How guest page tables are bound (nil: from the capabilities).
    public var bindingPath: HostCapabilities.Mechanism?
    /// Which devices may be assigned (and rebound for it).
    public var devicePolicy = DevicePolicy()
    /// Where guest memory backing files may live (none: only anonymous memory).
    public var memoryPolicy = try! GuestMemoryPolicy(directories: [])

    /// Where kernel descriptors are kept across restarts (nil: nowhere; a restart rebuilds).
    public var descriptorStore: (any DescriptorStore)?
    /// Descriptors a previous process kept, by name, handed back at start to adopt.
    public var adoptedDescriptors: [String: Int32] = [:]

    /// The defaults.
    public init() {}

    /// The delay before retry number `attempt` (1-based): exponential, capped, with ±50% jitter.
    public func backoff(attempt: Int) -> Double {
        let exponential = min(backoffCap, backoffBase * Double(1 << min(attempt - 1, 30)))
        return exponential * Double.random(in: 0.5...1.5)
    }
}
