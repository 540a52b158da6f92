/// A work item: a resource's key, never an event (reconciliation is level-based).
public enum ResourceKey: Hashable, Sendable, CustomStringConvertible {
    /// A VM by id.
    case vm(String)
    /// A device by PCI address.
    case device(String)
    /// A binding by id.
    case binding(String)

    public var description: String {
        switch self {
        case let .vm(id): return "vm/\(id)"
        case let .device(address): return "device/\(address)"
        case let .binding(id): return "binding/\(id)"
        }
    }
}
