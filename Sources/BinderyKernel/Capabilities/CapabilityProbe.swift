import CBinderyKernel

/// Learns `HostCapabilities` through the VFIO interface: `VFIO_CHECK_EXTENSION`,
/// `VFIO_IOMMU_GET_INFO`'s capability chain on a probe container, and iommufd's
/// `IOMMU_GET_HW_INFO`. Sysfs only tells it which groups and devices it may open.
public struct CapabilityProbe: Sendable {
    /// The kernel boundary.
    public let syscalls: any Syscalls
    /// Where devices are listed.
    public let inventory: SysfsInventory

    /// A probe over `syscalls` and `inventory`.
    public init(syscalls: any Syscalls, inventory: SysfsInventory) {
        self.syscalls = syscalls
        self.inventory = inventory
    }

    /// Probes the host. Never throws: what cannot be learned is reported as unsupported, with why.
    public func discover() -> HostCapabilities {
        var capabilities = HostCapabilities(kernelDriver: syscalls.driverName, kernelRelease: syscalls.kernelRelease,
                                            vfioAPIVersion: nil, type1v2: false, iommufd: false,
                                            nesting: .unsupported("not probed"))
        let devices = (try? inventory.devices()) ?? []
        var reasons: [String] = []
        var awaitingDevice = false
        do {
            let container = try VFIOContainer(syscalls: syscalls)
            defer { container.close() }
            capabilities.vfioAPIVersion = Int(VFIO_API_VERSION)
            capabilities.type1v2 = try container.checkExtension(VFIO_TYPE1v2_IOMMU)
            if let nesting = try probeType1Nesting(container, devices: devices) {
                capabilities.nesting = nesting
                capabilities.iommufd = iommufdOpens()
                return capabilities
            }
            reasons.append("VFIO_IOMMU_GET_INFO reports no nesting capability")
        } catch {
            if case .unsupported(capability: "nesting", _) = error { awaitingDevice = true }
            reasons.append("\(error)")
        }
        switch probeIOMMUFD(devices: devices) {
        case let .success(nesting):
            capabilities.iommufd = true
            if nesting.supported || nesting.pasidScope != nil { capabilities.nesting = nesting; return capabilities }
            reasons.append(nesting.reason ?? "IOMMU_GET_HW_INFO reports no nested first-stage translation with PASID")
        case let .failure(error):
            if case .open = error {} else { capabilities.iommufd = true }
            if case .unsupported(capability: "iommufd probe", _) = error { awaitingDevice = true }
            reasons.append("iommufd: \(error)")
        }
        capabilities.nesting = .unsupported(reasons.joined(separator: "; "))
        capabilities.nesting.awaitingDevice = awaitingDevice
        return capabilities
    }

    /// True when /dev/iommu opens.
    private func iommufdOpens() -> Bool {
        guard let context = try? IOMMUFD(syscalls: syscalls) else { return false }
        context.close()
        return true
    }

    /// Sets up a probe container on a free viable group, asks for the nesting IOMMU type,
    /// and reads the nesting capability from GET_INFO. Nil when the kernel has none.
    private func probeType1Nesting(_ container: VFIOContainer, devices: [PCIDevice]) throws(KernelError) -> HostCapabilities.Nesting? {
        guard try container.checkExtension(VFIO_TYPE1_NESTING_IOMMU) else { return nil }
        guard let group = openFreeViableGroup(devices: devices) else {
            throw .unsupported(capability: "nesting", detail: "cannot be confirmed: no free IOMMU group on vfio-pci to set up a probe container with")
        }
        defer { group.close() }
        try group.setContainer(container)
        do {
            try container.setIOMMU(VFIO_TYPE1_NESTING_IOMMU)
        } catch where error.errno == .EINVAL {
            return nil  // CHECK_EXTENSION says 1 on kernels without nesting hardware; SET_IOMMU tells the truth.
        }
        guard let info = try container.info().nesting, info.canBindPageTables,
              info.format == UInt32(IOMMU_PASID_FORMAT_INTEL_VTD) else { return nil }
        return HostCapabilities.Nesting(
            supported: true, mechanism: .vfioType1Nesting,
            formats: [.init(name: "intel-vtd", versions: [Int(IOMMU_GPASID_BIND_VERSION_1)])],
            pasidBits: Int(info.pasidBits),
            addressWidths: [39, 48, 57].filter { $0 <= Int(info.addressWidth) }, reason: nil, pasidScope: .perPASID)
    }

    private func openFreeViableGroup(devices: [PCIDevice]) -> VFIOGroup? {
        let byGroup = Dictionary(grouping: devices.filter { $0.iommuGroup != nil }, by: { $0.iommuGroup! })
        for (number, members) in byGroup.sorted(by: { $0.key < $1.key })
        where members.allSatisfy({ $0.driver == "vfio-pci" || $0.driver == nil }) && members.contains(where: \.isBoundToVFIO) {
            if let group = try? VFIOGroup(number: number, syscalls: syscalls), (try? group.status().isViable) == true {
                return group
            }
        }
        return nil
    }

    /// Asks the kernel whether a stage-1 table attaches at a PASID: nesting parent over an empty
    /// IOAS, a PASID-capable stage-1 on it (`IOMMU_HWPT_ALLOC_PASID`: EOPNOTSUPP before 6.15,
    /// measured on 6.12), and `VFIO_DEVICE_ATTACH_IOMMUFD_PT` with `ATTACH_PASID` (EINVAL
    /// there is a kernel without per-PASID attach). Any other failure leaves the scope unknown.
    /// Everything is released when the probe's iommufd closes. Returns the scope and, for
    /// `.device`, the kernel's answer.
    private func pasidScope(_ context: IOMMUFD, _ cdev: VFIODevice, deviceID: UInt32) -> (HostCapabilities.PASIDScope, String?)? {
        guard let ioas = try? context.allocateIOAS(),
              let parent = try? context.allocateNestingParent(deviceID: deviceID, ioas: ioas),
              (try? context.attach(cdev, to: parent)) != nil else { return nil }
        let stage1: UInt32
        do {
            stage1 = try context.allocateStage1(deviceID: deviceID, parent: parent, pageTable: 0, addressWidth: 48, flags: 0, forPASID: true)
        } catch {
            guard error.errno == .EOPNOTSUPP else { return nil }
            return (.device, "IOMMU_HWPT_ALLOC with IOMMU_HWPT_ALLOC_PASID answered EOPNOTSUPP: this kernel has no PASID-capable "
                + "stage-1 tables and attaches them only device-wide (per-PASID attach arrived in 6.15)")
        }
        do {
            try context.attach(cdev, to: stage1, pasid: 1)
            return (.perPASID, nil)
        } catch {
            guard error.errno == .EINVAL else { return nil }
            return (.device, "VFIO_DEVICE_ATTACH_IOMMUFD_PT with VFIO_DEVICE_ATTACH_PASID answered EINVAL: this kernel attaches "
                + "stage-1 tables only device-wide (per-PASID attach arrived in 6.15)")
        }
    }

    /// Why `device` gets no nested translation: what GET_HW_INFO said, and what the kernel
    /// answers when asked for a nesting parent anyway (EOPNOTSUPP on QEMU's emulated VT-d).
    private func noNestingReason(_ context: IOMMUFD, deviceID: UInt32, device: String, info: IOMMUFD.HardwareInfo) -> String {
        guard info.dataType == IOMMU_HW_INFO_TYPE_INTEL_VTD.rawValue else {
            return "IOMMU_GET_HW_INFO for \(device) reports IOMMU data type \(info.dataType), not Intel VT-d: no bind format for it yet"
        }
        let ecap = info.extendedCapabilityRegister
        let bits = "NEST \(ecap >> 26 & 1), FLTS \(ecap >> 47 & 1), SMTS \(ecap >> 43 & 1), PASID \(ecap >> 40 & 1)"
        var reason = "IOMMU_GET_HW_INFO for \(device): VT-d ecap has no nested first-stage translation with PASID (\(bits))"
        if let ioas = try? context.allocateIOAS() {
            do {
                _ = try context.allocateNestingParent(deviceID: deviceID, ioas: ioas)
            } catch {
                reason += "; IOMMU_HWPT_ALLOC with IOMMU_HWPT_ALLOC_NEST_PARENT answered \(error.errno?.name ?? "\(error)")"
            }
        }
        return reason
    }

    /// Binds a vfio-pci device's cdev to a fresh iommufd and reads GET_HW_INFO.
    private func probeIOMMUFD(devices: [PCIDevice]) -> Result<HostCapabilities.Nesting, KernelError> {
        do {
            let context = try IOMMUFD(syscalls: syscalls)
            defer { context.close() }
            var busy: [String] = []
            for device in devices where device.isBoundToVFIO {
                guard let path = inventory.vfioCdevPath(of: device.address) else { continue }
                let cdev: VFIODevice
                do {
                    cdev = try VFIODevice(cdev: path, address: device.address, syscalls: syscalls)
                } catch {
                    if error.errno == .EBUSY { busy.append(device.address) }
                    continue
                }
                defer { cdev.close() }
                let deviceID: UInt32
                do {
                    deviceID = try context.bind(cdev)
                } catch where error.errno == .EBUSY {
                    busy.append(device.address)   // a VM (or its VMM) has it: ask another, or later
                    continue
                }
                let info = try context.hardwareInfo(deviceID: deviceID)
                let ecap = info.extendedCapabilityRegister, cap = info.capabilityRegister
                let nested = ecap & (1 << 26) != 0 && ecap & (1 << 47) != 0 && ecap & (1 << 40) != 0
                guard info.dataType == IOMMU_HW_INFO_TYPE_INTEL_VTD.rawValue, nested else {
                    return .success(.unsupported(noNestingReason(context, deviceID: deviceID, device: device.address, info: info)))
                }
                let pasidBits = Int((ecap >> 35) & 0x1f) + 1
                let answer = info.maxPASIDLog2 > 0 ? pasidScope(context, cdev, deviceID: deviceID) : nil
                let scope = answer?.0
                return .success(HostCapabilities.Nesting(
                    supported: scope != .device, mechanism: .iommufd,
                    formats: scope == .device ? [] : [.init(name: "intel-vtd", versions: [1])], pasidBits: pasidBits,
                    addressWidths: cap & (1 << 62) != 0 ? [48, 57] : [48],
                    reason: answer?.1, pasidScope: scope))
            }
            return .failure(.unsupported(capability: "iommufd probe", detail: busy.isEmpty ? "no vfio-pci device with a VFIO cdev"
                : "every vfio-pci device with a VFIO cdev is in use (EBUSY: \(busy.joined(separator: ", ")))"))
        } catch {
            return .failure(error)
        }
    }
}

extension SysfsInventory {
    /// `/dev/vfio/devices/vfioN` for a device bound to vfio-pci with a cdev, from `<device>/vfio-dev/`.
    public func vfioCdevPath(of address: String) -> String? {
        guard case let .success(names) = syscalls.listDirectory(path(of: address) + "/vfio-dev"),
              let name = names.first(where: { $0.hasPrefix("vfio") }) else { return nil }
        return "/dev/vfio/devices/" + name
    }
}
