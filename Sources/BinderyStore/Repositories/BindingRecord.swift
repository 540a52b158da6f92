/// What a client asks for: a guest page table of `vmID`'s `deviceAddress` bound at `guestPASID`.
public struct BindingSpec: Sendable, Equatable {
    /// The VM.
    public var vmID: String
    /// The device (assigned to that VM).
    public var deviceAddress: String
    /// Only `guest-page-table` is defined.
    public var type = "guest-page-table"
    /// The guest's PASID.
    public var guestPASID: Int
    /// A host PASID the client insists on (nil: allocated).
    public var requestedHostPASID: Int?
    /// `intel-vtd`.
    public var format = "intel-vtd"
    /// Payload version (1).
    public var version = 1
    /// Guest page-table base (guest physical).
    public var pageTableAddress: UInt64
    /// Guest address width (39, 48 or 57).
    public var addressWidth: Int
    /// Format-specific fields as JSON (`{"sre":true,...,"pat":0,"emt":0}`).
    public var formatFields = "{}"

    /// A spec from its parts.
    public init(vmID: String, deviceAddress: String, guestPASID: Int, requestedHostPASID: Int? = nil,
                pageTableAddress: UInt64, addressWidth: Int, formatFields: String = "{}") {
        self.vmID = vmID
        self.deviceAddress = deviceAddress
        self.guestPASID = guestPASID
        self.requestedHostPASID = requestedHostPASID
        self.pageTableAddress = pageTableAddress
        self.addressWidth = addressWidth
        self.formatFields = formatFields
    }
}

/// A binding as stored.
public struct BindingRecord: Sendable, Equatable {
    /// Server-assigned id.
    public var id: String
    /// What was asked for.
    public var spec: BindingSpec
    /// Bookkeeping.
    public var meta: ResourceMeta
    /// Set when a DELETE asked for it to go.
    public var deletionRequestedAt: String?
    /// Set once unbound (a tombstone).
    public var deletedAt: String?
    /// `Pending`, `Bound`, `Failed`, `Unbinding`, `Deleted`, `Degraded`.
    public var phase: Phase
    /// Generation last acted on.
    public var observedGeneration: Int
    /// Status conditions.
    public var conditions: [Condition]
    /// The host PASID in use.
    public var hostPASID: Int?
    /// The last kernel error's errno name.
    public var lastErrorErrno: String?
    /// The ioctl that returned it.
    public var lastErrorCall: String?
    /// When the reconciler retries next.
    public var nextRetryAt: String?

    /// Compact JSON for audit events.
    public var auditJSON: String {
        JSONText.object([
            ("id", JSONText.string(id)), ("vm", JSONText.string(spec.vmID)), ("device", JSONText.string(spec.deviceAddress)),
            ("guestPasid", String(spec.guestPASID)), ("hostPasid", JSONText.optionalInteger(hostPASID)),
            ("pageTable", JSONText.string("0x" + String(spec.pageTableAddress, radix: 16))), ("addressWidth", String(spec.addressWidth)),
            ("format", JSONText.string(spec.format)), ("version", String(spec.version)),
            ("generation", String(meta.generation)), ("resourceVersion", String(meta.resourceVersion)), ("phase", JSONText.string(phase.rawValue)),
        ])
    }
}
