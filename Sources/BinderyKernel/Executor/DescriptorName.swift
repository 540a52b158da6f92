/// Names for descriptors that belong to a PCI device: `<kind>.<address with - for :>`, since
/// `LISTEN_FDNAMES` and systemd's `FDNAME=` separate names with `:`.
public enum DescriptorName {
    /// `vfio-device.0000-3b-00.0` for kind `vfio-device` and device `0000:3b:00.0`.
    public static func make(_ kind: String, device address: String) -> String {
        kind + "." + address.replacingOccurrences(of: ":", with: "-")
    }

    /// The device address in `name` when it was made by `make(kind, device:)`, else nil.
    public static func device(in name: String, kind: String) -> String? {
        guard name.hasPrefix(kind + ".") else { return nil }
        return String(name.dropFirst(kind.count + 1)).replacingOccurrences(of: "-", with: ":")
    }
}
