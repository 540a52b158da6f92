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

    /// Opens the kernel `choice` names and probes it.
    public static func open(_ choice: Choice, sysfsRoot: String, simulatedHost: String, faults: String) throws -> HostKernel {
        guard let profile = SimulatedHostProfile(rawValue: simulatedHost) else {
            throw HostKernelError(reason: "simulated host \(simulatedHost) is none of \(simulatedHostNames.joined(separator: ", "))")
        }
        func simulated() throws -> any Syscalls { SimulatedKernel(host: profile.host, faults: try FaultPlan(parsing: faults)) }
        let syscalls: any Syscalls, root: String, why: String
        switch choice {
        case .linux: (syscalls, root, why) = (LinuxSyscalls(), sysfsRoot, "--kernel linux")
        case .simulated: (syscalls, root, why) = (try simulated(), "/sys", "--kernel simulated")
        case .auto:
            (syscalls, root, why) = FileManager.default.fileExists(atPath: VFIOContainer.path)
                ? (LinuxSyscalls(), sysfsRoot, "auto: \(VFIOContainer.path) exists")
                : (try simulated(), "/sys", "auto: \(VFIOContainer.path) does not exist here")
        }
        let capabilities = CapabilityProbe(syscalls: syscalls, inventory: SysfsInventory(syscalls: syscalls, root: root)).discover()
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
                            logger: @escaping @Sendable (String) -> Void = { _ in }) {
        var options = options
        options.sysfsRoot = kernel.sysfsRoot
        options.capabilities = kernel.capabilities
        self.init(store: store, syscalls: kernel.syscalls, options: options, logger: logger)
    }
}
