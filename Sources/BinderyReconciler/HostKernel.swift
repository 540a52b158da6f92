import BinderyKernel
import BinderyStore
import Foundation

/// What the layers above the reconciler know of the kernel: types they name, re-exported here
/// so the API never imports the executor (ARCHITECTURE.md: API → Reconciler → Kernel).
public typealias HostCapabilities = BinderyKernel.HostCapabilities
/// Where guest memory backing files may come from.
public typealias GuestMemoryPolicy = BinderyKernel.GuestMemoryPolicy
/// Which devices may be assigned.
public typealias DevicePolicy = BinderyKernel.DevicePolicy

/// The kernel a daemon drives, chosen once at start: Linux's `/dev/vfio` and `/sys`, or the
/// simulated kernel pretending to be one of the simulated host profiles. Probed once.
public struct HostKernel: Sendable {
    /// Which kernel to drive.
    public enum Choice: String, Sendable, CaseIterable {
        /// Linux where /dev/vfio/vfio exists, else the simulated kernel.
        case auto
        /// Linux's /dev/vfio and /sys.
        case linux
        /// The in-process simulated kernel.
        case simulated
    }

    /// The simulated host profiles (`--simulated-host`).
    public static let simulatedHostNames = SimulatedHostProfile.allCases.map(\.rawValue)

    /// The kernel boundary.
    let syscalls: any Syscalls
    /// Where sysfs is read.
    public let sysfsRoot: String
    /// Why this kernel was chosen, for the first log line.
    public let why: String
    /// What the VFIO interface reported.
    public let capabilities: HostCapabilities

    /// `linux` or `simulated`.
    public var driverName: String { syscalls.driverName }
    /// The kernel release.
    public var release: String { syscalls.kernelRelease }

    /// Opens the kernel `choice` names and probes it. With `dataDirectory`, a probe that has
    /// no free device to ask with falls back on the last conclusive answer of this boot.
    public static func open(_ choice: Choice, sysfsRoot: String, simulatedHost: String, faults: String,
                            dataDirectory: String? = nil) throws -> HostKernel {
        guard let profile = SimulatedHostProfile(rawValue: simulatedHost) else {
            throw HostKernelError(reason: "simulated host \(simulatedHost) is none of \(simulatedHostNames.joined(separator: ", "))")
        }
        func simulated() throws -> any Syscalls { SimulatedKernel(host: profile.host, faults: try FaultPlan(parsing: faults)) }
        let syscalls: any Syscalls, root: String, chosen: String
        switch choice {
        case .linux: (syscalls, root, chosen) = (LinuxSyscalls(), sysfsRoot, "--kernel linux")
        case .simulated: (syscalls, root, chosen) = (try simulated(), "/sys", "--kernel simulated")
        case .auto:
            (syscalls, root, chosen) = FileManager.default.fileExists(atPath: VFIOContainer.path)
                ? (LinuxSyscalls(), sysfsRoot, "auto: \(VFIOContainer.path) exists")
                : (try simulated(), "/sys", "auto: \(VFIOContainer.path) does not exist here")
        }
        var capabilities = CapabilityProbe(syscalls: syscalls, inventory: SysfsInventory(syscalls: syscalls, root: root)).discover()
        var why = chosen
        if let memory = dataDirectory.map(CapabilityMemory.init(dataDirectory:)), syscalls.driverName == "linux" {
            if !capabilities.nesting.awaitingDevice {
                memory.remember(capabilities)
            } else if let recalled = memory.recall(release: syscalls.kernelRelease) {
                why += "; capabilities from this boot's last probe (no free vfio-pci device to ask now: \(capabilities.nesting.reason ?? ""))"
                capabilities = recalled
            }
        }
        return HostKernel(syscalls: syscalls, sysfsRoot: root, why: why, capabilities: capabilities)
    }

    /// Why the kernel cannot be reached now (Linux whose /dev/vfio/vfio is gone), or nil.
    public func unreachableReason() -> String? {
        driverName == "linux" && !FileManager.default.fileExists(atPath: VFIOContainer.path) ? "\(VFIOContainer.path) is gone" : nil
    }
}

/// A kernel setting that cannot work.
public struct HostKernelError: Error, CustomStringConvertible {
    /// What is wrong.
    public let reason: String
    /// The reason.
    public var description: String { reason }
}

extension Reconciler {
    /// A reconciler driving `kernel`.
    public convenience init(store: Store, kernel: HostKernel, options: ReconcilerOptions = ReconcilerOptions(),
                            dataDirectory: String? = nil, logger: @escaping @Sendable (String) -> Void = { _ in }) {
        var options = options
        options.sysfsRoot = kernel.sysfsRoot
        options.capabilities = kernel.capabilities
        if let dataDirectory {
            let memory = CapabilityMemory(dataDirectory: dataDirectory)
            options.capabilitiesLearned = { memory.remember($0) }
        }
        self.init(store: store, syscalls: kernel.syscalls, options: options, logger: logger)
    }
}
