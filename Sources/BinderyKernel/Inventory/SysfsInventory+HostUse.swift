extension SysfsInventory {
    /// What `address`'s driver backs on the host now, read from sysfs: network interfaces that
    /// are up (`net/<if>/operstate`) and NVMe namespaces (`nvme/<ctrl>/<ctrl>nN`). Empty when
    /// nothing is found (a missing directory is not an error).
    public func hostUse(of address: String) -> [String] {
        var uses: [String] = []
        let directory = path(of: address)
        if case let .success(interfaces) = syscalls.listDirectory(directory + "/net") {
            for interface in interfaces.sorted() {
                if case let .success(bytes) = syscalls.readFile(directory + "/net/\(interface)/operstate"),
                   String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace).first == "up" {
                    uses.append("network interface \(interface) (up)")
                }
            }
        }
        if case let .success(controllers) = syscalls.listDirectory(directory + "/nvme") {
            for controller in controllers.sorted() {
                guard case let .success(entries) = syscalls.listDirectory(directory + "/nvme/\(controller)") else { continue }
                for namespace in entries.sorted() where namespace.hasPrefix(controller + "n") {
                    uses.append("block device \(namespace)")
                }
            }
        }
        return uses
    }
}
