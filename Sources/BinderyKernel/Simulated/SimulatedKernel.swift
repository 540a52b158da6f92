import CBinderyKernel
import Foundation
import Glibc

/// An in-process kernel behind the same `Syscalls` boundary as Linux. It decodes the bytes
/// the executor hands it as the kernel would, keeps groups, containers, DMA mappings, PASID
/// tables and iommufd objects, answers with the kernel's errnos, drops everything bound
/// through a container or iommufd when it is closed, and injects faults from a `FaultPlan`.
public final class SimulatedKernel: Syscalls, @unchecked Sendable {
    /// The synthetic machine.
    public let host: SimulatedHost
    /// Faults to inject; change it at any time.
    public let faults: FaultPlan

    let lock = NSLock()
    var files: [Int32: SimFile] = [:]
    /// Descriptors made by `dup` share one open file: released when the last of them closes.
    var sharedFiles: [Int32: SharedFile] = [:]
    /// Calls made, by ioctl name (and `open`, `dup`), for tests that prove a call was not repeated.
    public private(set) var callCounts: [String: Int] = [:]
    /// Simulated descriptors are numbered from here, above the real descriptors a process
    /// holds (Linux's default `fs.nr_open` is 2^20; the unit sets `LimitNOFILE=65536`), so a
    /// number names one or the other.
    static let firstFD: Int32 = 1 << 24
    var nextFD: Int32 = firstFD
    /// Real descriptors `duplicate` made (memory files), which `close` closes for real.
    var exported: Set<Int32> = []
    var nextObjectID = 1
    var devices: [String: SimDevice] = [:]
    var groups: [Int: SimGroup] = [:]
    var allocatedPASIDs: [UInt32: Int] = [:]   // host PASID → owning container id
    var lowestPossiblyFreePASID: UInt32 = 1     // no PASID below this is free (keeps allocation O(1) amortized)
    var nextAddress: UInt64 = 0x7f00_0000_0000
    var processMemory: [UInt64: Int] = [:]      // mmapped address → length, until munmap
    var hidden: Set<String> = []                // devices removed from the inventory (drift)

    /// A simulated kernel for `host`.
    public init(host: SimulatedHost = .standard, faults: FaultPlan = FaultPlan()) {
        self.host = host
        self.faults = faults
        for spec in host.devices {
            devices[spec.address] = SimDevice(spec: spec)
            if groups[spec.group] == nil { groups[spec.group] = SimGroup(number: spec.group) }
        }
    }

    public var driverName: String { "simulated" }
    public var kernelRelease: String { host.kernelRelease }

    // MARK: - Files

    public func open(_ path: String, flags: Int32) -> Int32 {
        if let errno = faults.fault(for: "open") { return -errno.code }
        return lock.withLock {
            callCounts["open", default: 0] += 1
            guard let file = resolve(path) else { return -Errno.ENOENT.code }
            if case let .group(number) = file {
                guard let group = groups[number] else { return -Errno.ENOENT.code }
                if group.isOpen { return -Errno.EBUSY.code }
                group.isOpen = true
            }
            if case let .cdev(address) = file, devices[address]?.iommufdBinding != nil || isGroupOpen(of: address) {
                return -Errno.EBUSY.code
            }
            let fd = nextFD
            nextFD += 1
            files[fd] = file
            return fd
        }
    }

    /// `dup(2)` inside the simulated kernel: another descriptor for the same open file, which
    /// stays alive until both are closed (what the service manager's fd store relies on).
    public func dup(_ fd: Int32) -> Int32 {
        lock.withLock {
            guard let file = files[fd] else { return -Errno.EBADF.code }
            callCounts["dup", default: 0] += 1
            let share = sharedFiles[fd] ?? SharedFile()
            share.references += 1
            sharedFiles[fd] = share
            let copy = nextFD
            nextFD += 1
            files[copy] = file
            sharedFiles[copy] = share
            return copy
        }
    }

    public func duplicate(_ fd: Int32, describing description: String) -> Int32 {
        guard lock.withLock({ files[fd] != nil }) else { return -Errno.EBADF.code }
        let copy = bindery_memfd("bindery-simulated " + description)
        guard copy >= 0 else { return -errno }
        lock.withLock { _ = exported.insert(copy) }
        return copy
    }

    public func close(_ fd: Int32) -> Int32 {
        // A duplicate made for a VMM is a real descriptor: closing it in the simulated table
        // instead closed whichever simulated file had the same number (a VM's container).
        if lock.withLock({ exported.remove(fd) != nil }) { return Glibc.close(fd) == 0 ? 0 : -errno }
        return lock.withLock {
            guard let file = files.removeValue(forKey: fd) else { return -Errno.EBADF.code }
            if let share = sharedFiles.removeValue(forKey: fd) {
                share.references -= 1
                if share.references > 0 { return 0 }   // another descriptor still holds the file
            }
            switch file {
            case let .container(container): releaseContainer(container)
            case let .group(number):
                // Device fds hold a reference to the group file: its release (which takes the
                // group out of its container) waits for the last of them, as on Linux.
                if let group = groups[number] {
                    if group.openDevices > 0 { group.releasePending = true } else { release(group) }
                }
            case let .groupDevice(number, _):
                if let group = groups[number] {
                    group.openDevices -= 1
                    if group.openDevices == 0 && group.releasePending { release(group) }
                }
            case let .cdev(address): if let device = devices[address] { unbindFromIOMMUFD(device) }
            case let .iommufd(context): releaseIOMMUFD(context)
            case .regular: break
            }
            return 0
        }
    }

    /// The group file's release: out of its container, and free to be opened again.
    private func release(_ group: SimGroup) {
        if let container = group.container { detach(group, from: container) }
        group.isOpen = false
        group.releasePending = false
    }

    /// What `path` opens, if it exists now.
    private func resolve(_ path: String) -> SimFile? {
        if path == VFIOContainer.path {
            defer { nextObjectID += 1 }
            return .container(SimContainer(id: nextObjectID))
        }
        if path == IOMMUFD.path {
            guard host.iommufd else { return nil }
            defer { nextObjectID += 1 }
            return .iommufd(SimIOMMUFD(id: nextObjectID))
        }
        if path.hasPrefix("/dev/vfio/devices/vfio") {
            guard host.iommufd, let index = Int(path.dropFirst("/dev/vfio/devices/vfio".count)),
                  host.devices.indices.contains(index),
                  devices[host.devices[index].address]?.driver == "vfio-pci" else { return nil }
            return .cdev(address: host.devices[index].address)
        }
        if path.hasPrefix("/dev/vfio/"), let number = Int(path.dropFirst("/dev/vfio/".count)) {
            let members = devices.values.filter { $0.spec.group == number }
            guard members.contains(where: { $0.driver == "vfio-pci" }) else { return nil }
            return .group(number)
        }
        if path.hasPrefix("/dev/") || path.hasPrefix("/sys/") { return nil }
        return FileManager.default.fileExists(atPath: path) ? .regular(path) : nil
    }

    private func isGroupOpen(of address: String) -> Bool {
        guard let number = devices[address]?.spec.group else { return false }
        return groups[number]?.isOpen ?? false
    }

    /// The cdev path of `address` (`/dev/vfio/devices/vfioN`), as udev would name it here.
    public func cdevPath(of address: String) -> String? {
        host.devices.firstIndex { $0.address == address }.map { "/dev/vfio/devices/vfio\($0)" }
    }

    // MARK: - Memory

    public func mmap(length: Int, fd: Int32, offset: Int64) -> Result<UInt64, Errno> {
        if let errno = faults.fault(for: "mmap") { return .failure(errno) }
        return lock.withLock {
            guard length > 0 else { return .failure(.EINVAL) }
            if fd >= 0, files[fd] == nil { return .failure(.EBADF) }
            let address = nextAddress
            let granule: UInt64 = 2 << 20
            nextAddress += (UInt64(length) + granule - 1) / granule * granule + granule
            processMemory[address] = length
            return .success(address)
        }
    }

    public func munmap(address: UInt64, length: Int) -> Int32 {
        lock.withLock {
            guard length > 0, address & Self.pageMask == 0 else { return -Errno.EINVAL.code }
            processMemory[address] = nil  // like Linux, unmapping what is not mapped succeeds
            return 0
        }
    }

    // MARK: - ioctl

    public func ioctl(_ fd: Int32, _ request: IoctlRequest, _ argument: UnsafeMutableRawPointer) -> Int32 {
        if let errno = faults.fault(for: request.name) { return -errno.code }
        return lock.withLock { () -> Int32 in
            callCounts[request.name, default: 0] += 1
            guard let file = files[fd] else { return -Errno.EBADF.code }
            let bytes = RawBytes(argument)
            switch file {
            case let .container(container): return containerIoctl(container, request, bytes)
            case let .group(number): return groupIoctl(groups[number]!, request, bytes)
            case let .groupDevice(_, address), let .cdev(address):
                if case .cdev = file { return cdevIoctl(devices[address]!, request, bytes) }
                return deviceIoctl(request, bytes)
            case let .iommufd(context): return iommufdIoctl(context, request, bytes)
            case .regular: return -Errno.ENOTTY.code
            }
        }
    }

    public func ioctl(_ fd: Int32, _ request: IoctlRequest, value: UInt) -> Int32 {
        if let errno = faults.fault(for: request.name) { return -errno.code }
        return lock.withLock { () -> Int32 in
            callCounts[request.name, default: 0] += 1
            guard let file = files[fd] else { return -Errno.EBADF.code }
            switch file {
            case let .container(container): return containerValueIoctl(container, request, value)
            case let .group(number):
                guard request == .groupUnsetContainer else { return -Errno.ENOTTY.code }
                return unsetContainer(groups[number]!)
            default: return -Errno.ENOTTY.code
            }
        }
    }

    /// The answer of a device fd opened through a group.
    private func deviceIoctl(_ request: IoctlRequest, _ bytes: RawBytes) -> Int32 {
        guard request == .deviceGetInfo else { return -Errno.ENOTTY.code }
        return deviceInfo(bytes)
    }

    /// `VFIO_DEVICE_GET_INFO`: a PCI device with reset, 9 regions, 5 interrupt types.
    func deviceInfo(_ bytes: RawBytes) -> Int32 {
        guard bytes.u32(0) >= 16 else { return -Errno.EINVAL.code }
        bytes.set(4, u32: UInt32(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET))
        bytes.set(8, u32: 9)
        bytes.set(12, u32: 5)
        return 0
    }

    // MARK: - Inspection, for tests

    /// Type1 nesting bindings of `address`: host PASID → bound table.
    public func boundTables(of address: String) -> [UInt32: GuestPageTableBind] {
        lock.withLock { devices[address]?.boundTables.mapValues(\.bind) ?? [:] }
    }

    /// iommufd PASID attachments of `address`: PASID → stage-1 HWPT id.
    public func pasidAttachments(of address: String) -> [UInt32: UInt32] {
        lock.withLock { devices[address]?.pasidTables ?? [:] }
    }

    /// The driver `address` is bound to now.
    public func driver(of address: String) -> String? {
        lock.withLock { devices[address]?.driver }
    }

    /// The DMA mappings of the container or iommufd IOAS behind `fd`, as (iova, size).
    public func mappings(containerFD fd: Int32) -> [(iova: UInt64, size: UInt64)] {
        lock.withLock {
            guard case let .container(container)? = files[fd] else { return [] }
            return container.mappings.map { ($0.iova, $0.size) }
        }
    }

    /// Host PASIDs allocated through the nesting ABI.
    public var allocatedPASIDCount: Int { lock.withLock { allocatedPASIDs.count } }

    /// Open file descriptors.
    public var openFileCount: Int { lock.withLock { files.count } }

    /// Removes a device from (or returns it to) the PCI inventory, as a hot-unplug would.
    public func setPresent(_ present: Bool, of address: String) {
        lock.withLock {
            if present { hidden.remove(address) } else { hidden.insert(address) }
        }
    }

    /// Changes a device's driver behind Bindery's back (a test's "someone unbound it").
    public func setDriver(_ driver: String?, of address: String) {
        lock.withLock { devices[address]?.driver = driver }
    }
}

/// One open file shared by `dup`ed descriptors.
final class SharedFile {
    var references = 1
}
