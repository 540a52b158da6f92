/// Where the reconciler keeps its kernel descriptors so that its own restart finds the VMs'
/// kernel objects as they are (systemd's fd store: `FDSTORE=1`, `FDNAME=`). The store holds
/// its own reference: closing ours does not release the object.
public protocol DescriptorStore: Sendable {
    /// Keeps `fd` under `name` (at most 255 characters, no `:`).
    func keep(_ fd: Int32, name: String)
    /// Drops what is kept under `name`.
    func forget(name: String)
}

/// The names descriptors are kept under: `vm.<id>.<what>` (`container`, `group.<n>`, `device.<address>`).
enum KeptName {
    static func make(vmID: String, _ what: String) -> String { "vm.\(vmID).\(what)" }

    /// The VM and the part after it, for a name this reconciler made.
    static func parse(_ name: String) -> (vmID: String, what: String)? {
        guard name.hasPrefix("vm.") else { return nil }
        let rest = name.dropFirst(3)
        guard let dot = rest.firstIndex(of: ".") else { return nil }
        return (String(rest[..<dot]), String(rest[rest.index(after: dot)...]))
    }
}
