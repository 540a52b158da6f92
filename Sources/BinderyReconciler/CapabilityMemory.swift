import Foundation

/// The last conclusive probe answer of this boot, kept in the data directory. A restart while
/// every vfio-pci device is held by a VM (or its VMM) cannot ask the kernel again, and the
/// kernel has not changed since: same boot id, same release. Linux only — a simulated host
/// is whatever `--simulated-host` says this time.
struct CapabilityMemory {
    /// `<data-dir>/host-capabilities.json`.
    let path: String

    /// The memory kept in `dataDirectory`.
    init(dataDirectory: String) { path = dataDirectory + "/host-capabilities.json" }

    private struct Record: Codable {
        var bootID: String
        var release: String
        var capabilities: HostCapabilities
    }

    private static var bootID: String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What the probe answered earlier in this boot on `release`, if it was conclusive.
    func recall(release: String) -> HostCapabilities? {
        guard let bootID = Self.bootID, let data = FileManager.default.contents(atPath: path),
              let record = try? JSONDecoder().decode(Record.self, from: data),
              record.bootID == bootID, record.release == release, !record.capabilities.nesting.awaitingDevice else { return nil }
        return record.capabilities
    }

    /// Keeps `capabilities` when conclusive (written atomically, 0600).
    func remember(_ capabilities: HostCapabilities) {
        guard capabilities.kernelDriver == "linux", !capabilities.nesting.awaitingDevice, let bootID = Self.bootID,
              let data = try? JSONEncoder().encode(Record(bootID: bootID, release: capabilities.kernelRelease, capabilities: capabilities)) else { return }
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else { return }
        _ = rename(temporary, path)
    }
}
