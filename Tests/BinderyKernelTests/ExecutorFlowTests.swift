@testable import BinderyKernel
import CBinderyKernel
import XCTest

/// The executor's flows against the simulated kernel, and every fault surfacing as a typed
/// error naming the ioctl and errno.
final class ExecutorFlowTests: XCTestCase {
    private let memory = [GuestMemoryRegion(guestAddress: 0, size: 1 << 30), GuestMemoryRegion(guestAddress: 1 << 32, size: 1 << 30)]

    private func makeVM(_ kernel: SimulatedKernel) throws -> VMContext {
        try VMContext(syscalls: kernel, inventory: SysfsInventory(syscalls: kernel), memory: memory)
    }

    func testFullFlowMapsAttachesAllocatesBindsRebindsAndUnbinds() throws {
        let kernel = SimulatedKernel()
        let vm = try makeVM(kernel)
        XCTAssertFalse(vm.isMemoryMapped, "type1 maps memory once a group is attached")
        try vm.attach("0000:3b:00.0")
        XCTAssertTrue(vm.isMemoryMapped)
        XCTAssertEqual(kernel.mappings(containerFD: vm.container.fd).map(\.iova), [0, 1 << 32])
        XCTAssertEqual(vm.nesting?.pasidBits, 20)
        XCTAssertEqual(vm.nesting?.addressWidth, 57)

        let pasid = try vm.allocatePASID()
        XCTAssertGreaterThan(pasid, 0)
        let first = GuestPageTableBind(addressWidth: 48, pageTable: 0x1f00_0000, hostPASID: UInt64(pasid), guestPASID: 3)
        try vm.bind(first)
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0")[pasid], first)
        XCTAssertThrowsError(try vm.bind(first)) { XCTAssertEqual(($0 as? KernelError)?.errno, .EBUSY) }

        let second = GuestPageTableBind(addressWidth: 57, pageTable: 0x2f00_0000, hostPASID: UInt64(pasid), guestPASID: 3)
        try vm.rebind(from: first, to: second)
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0")[pasid], second)

        try vm.unbind(second)
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0"), [:])
        try vm.freePASID(pasid)
        XCTAssertEqual(kernel.allocatedPASIDCount, 0)

        try vm.detach("0000:3b:00.0")
        XCTAssertFalse(vm.isMemoryMapped)
        vm.close()
        XCTAssertEqual(kernel.openFileCount, 0)
    }

    func testTwoDeviceGroupIsRefusedNamingTheDevicesInTheWay() throws {
        let kernel = SimulatedKernel()
        kernel.setDriver("vfio-pci", of: "0000:5e:00.0")
        let vm = try makeVM(kernel)
        XCTAssertThrowsError(try vm.attach("0000:5e:00.0")) { error in
            XCTAssertEqual(error as? KernelError, .groupNotViable(group: 14, devicesInTheWay: ["0000:5e:00.1"]))
        }
        XCTAssertEqual(vm.attachedDevices, [])
        kernel.setDriver("vfio-pci", of: "0000:5e:00.1")
        try vm.attach("0000:5e:00.0")
        try vm.attach("0000:5e:00.1")
        XCTAssertEqual(vm.attachedDevices, ["0000:5e:00.0", "0000:5e:00.1"])
    }

    func testPASIDSpaceExhaustionIsENOSPC() throws {
        let kernel = SimulatedKernel()
        let vm = try makeVM(kernel)
        try vm.attach("0000:3b:00.0")
        XCTAssertEqual(try vm.allocatePASID(in: 1...2), 1)
        XCTAssertEqual(try vm.allocatePASID(in: 1...2), 2)
        XCTAssertThrowsError(try vm.allocatePASID(in: 1...2)) { error in
            XCTAssertEqual(error as? KernelError, .ioctl(call: "VFIO_IOMMU_PASID_REQUEST", errno: .ENOSPC, resource: "container fd \(vm.container.fd) PASID range 1...2"))
        }
    }

    func testBindingWithoutNestingIsTerminalAndNamesTheMissingCapability() throws {
        var host = SimulatedHost.standard
        host.type1Nesting = false
        let kernel = SimulatedKernel(host: host)
        let vm = try makeVM(kernel)
        try vm.attach("0000:3b:00.0")
        XCTAssertTrue(vm.isMemoryMapped, "falls back to type1v2")
        XCTAssertThrowsError(try vm.allocatePASID()) { error in
            guard case let .unsupported(capability, detail)? = error as? KernelError else { return XCTFail("\(error)") }
            XCTAssertEqual(capability, "guest page-table binding")
            XCTAssertTrue(detail.contains("VFIO_IOMMU_GET_INFO"))
            XCTAssertFalse((error as! KernelError).isTransient)
        }
    }

    func testEveryInjectedFaultSurfacesAsATypedErrorNamingTheIoctlAndErrno() throws {
        let faults: [(call: String, errno: Errno, step: (VMContext) throws -> Void)] = [
            ("VFIO_GROUP_SET_CONTAINER", .EBUSY, { try $0.attach("0000:3b:00.0") }),
            ("VFIO_SET_IOMMU", .ENODEV, { try $0.attach("0000:3b:00.0") }),
            ("VFIO_IOMMU_GET_INFO", .EIO, { try $0.attach("0000:3b:00.0") }),
            ("VFIO_IOMMU_MAP_DMA", .ENOSPC, { try $0.attach("0000:3b:00.0") }),
            ("VFIO_GROUP_GET_DEVICE_FD", .EINTR, { try $0.attach("0000:3b:00.0") }),
            ("VFIO_IOMMU_PASID_REQUEST", .ENOSPC, { vm in try vm.attach("0000:3b:00.0"); _ = try vm.allocatePASID() }),
            ("VFIO_IOMMU_NESTING_OP", .EBUSY, { vm in
                try vm.attach("0000:3b:00.0")
                try vm.bind(GuestPageTableBind(addressWidth: 48, pageTable: 0x1000, hostPASID: UInt64(try vm.allocatePASID())))
            }),
        ]
        for fault in faults {
            let kernel = SimulatedKernel(faults: FaultPlan([.init(call: fault.call, errno: fault.errno, trigger: .always)]))
            let vm = try makeVM(kernel)
            XCTAssertThrowsError(try fault.step(vm), fault.call) { error in
                let kernelError = error as? KernelError
                XCTAssertEqual(kernelError?.call, fault.call)
                XCTAssertEqual(kernelError?.errno, fault.errno)
                XCTAssertTrue("\(error)".contains(fault.call) && "\(error)".contains(fault.errno.name), "\(error)")
            }
            XCTAssertEqual(kernel.faults.injected[fault.call], 1)
        }
        // open and mmap faults too.
        let openFault = SimulatedKernel(faults: FaultPlan([.init(call: "open", errno: .EACCES, trigger: .always)]))
        XCTAssertThrowsError(try makeVM(openFault)) { XCTAssertEqual($0 as? KernelError, .open(path: "/dev/vfio/vfio", errno: .EACCES)) }
        let mmapFault = SimulatedKernel(faults: FaultPlan([.init(call: "mmap", errno: .ENOMEM, trigger: .always)]))
        XCTAssertThrowsError(try makeVM(mmapFault)) { XCTAssertEqual(($0 as? KernelError)?.errno, .ENOMEM) }
    }

    func testFaultPlanTriggersAndParsing() throws {
        let plan = try FaultPlan(parsing: "A=EBUSY@after:2; B=script:ok,EINTR,ok ;C=EIO@times:1;D=ENOSPC@rate:0.5")
        XCTAssertEqual((0..<4).map { _ in plan.fault(for: "A") }, [nil, nil, .EBUSY, .EBUSY])
        XCTAssertEqual((0..<4).map { _ in plan.fault(for: "B") }, [nil, .EINTR, nil, nil])
        XCTAssertEqual((0..<3).map { _ in plan.fault(for: "C") }, [.EIO, nil, nil])
        let hits = (0..<1000).compactMap { _ in plan.fault(for: "D") }.count
        XCTAssertTrue((400...600).contains(hits), "rate 0.5 gave \(hits)/1000")
        XCTAssertNil(plan.fault(for: "unlisted"))
        for bad in ["X", "X=EWHAT", "X=EBUSY@rate:2", "X=EBUSY@soon:1", "X=script:ok,ENOPE"] {
            XCTAssertThrowsError(try FaultPlan(parsing: bad), bad)
        }
    }

    func testIOMMUFDFlowAllocatesNestedTablesAndAttachesPerPASID() throws {
        let kernel = SimulatedKernel()
        let inventory = SysfsInventory(syscalls: kernel)
        let context = try IOMMUFD(syscalls: kernel)
        let path = try XCTUnwrap(inventory.vfioCdevPath(of: "0000:3c:00.0"))
        let device = try VFIODevice(cdev: path, address: "0000:3c:00.0", syscalls: kernel)
        let deviceID = try context.bind(device)
        let info = try context.hardwareInfo(deviceID: deviceID)
        XCTAssertEqual(info.maxPASIDLog2, 20)
        XCTAssertEqual(info.dataType, IOMMU_HW_INFO_TYPE_INTEL_VTD.rawValue)
        XCTAssertNotEqual(info.extendedCapabilityRegister & (1 << 26), 0)

        let ioas = try context.allocateIOAS()
        try context.map(ioas: ioas, vaddr: 0x7f00_0000_0000, iova: 0, length: 1 << 30)
        XCTAssertThrowsError(try context.map(ioas: ioas, vaddr: 0x7f10_0000_0000, iova: 0x1000, length: 0x1000)) {
            XCTAssertEqual(($0 as? KernelError)?.errno, .EEXIST)
        }
        let parent = try context.allocateNestingParent(deviceID: deviceID, ioas: ioas)
        try context.attach(device, to: parent)
        let s1 = try context.allocateStage1(deviceID: deviceID, parent: parent, pageTable: 0x1000, addressWidth: 48, flags: 1, forPASID: true)
        try context.attach(device, to: s1, pasid: 9)
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3c:00.0"), [9: s1])
        // Attaching again replaces atomically; the old stage-1 can then be destroyed.
        let replacement = try context.allocateStage1(deviceID: deviceID, parent: parent, pageTable: 0x2000, addressWidth: 57, flags: 0, forPASID: true)
        try context.attach(device, to: replacement, pasid: 9)
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3c:00.0"), [9: replacement])
        try context.destroy(s1)
        XCTAssertThrowsError(try context.destroy(replacement)) { XCTAssertEqual(($0 as? KernelError)?.errno, .EBUSY) }
        XCTAssertThrowsError(try context.allocateStage1(deviceID: deviceID, parent: parent, pageTable: 0x2000, addressWidth: 40, flags: 0, forPASID: true)) {
            XCTAssertEqual(($0 as? KernelError)?.errno, .EINVAL)
        }
        XCTAssertThrowsError(try context.allocateStage1(deviceID: deviceID, parent: parent, pageTable: 0x2000, addressWidth: 48, flags: 1 << 9, forPASID: true)) {
            XCTAssertEqual(($0 as? KernelError)?.errno, .EOPNOTSUPP)
        }
        try context.detach(device, pasid: 9)
        try context.destroy(replacement)
        XCTAssertEqual(try context.unmap(ioas: ioas, iova: 0, length: 1 << 30), 1 << 30)
        try context.attach(device, to: try context.allocateStage1(deviceID: deviceID, parent: parent, pageTable: 0x3000, addressWidth: 48, flags: 0, forPASID: true), pasid: 4)
        context.close()
        XCTAssertEqual(kernel.pasidAttachments(of: "0000:3c:00.0"), [:], "closing iommufd drops every attachment")
    }

    func testCapabilityProbeChoosesTheAdvertisedMechanism() {
        let standard = SimulatedKernel()
        let found = CapabilityProbe(syscalls: standard, inventory: SysfsInventory(syscalls: standard)).discover()
        XCTAssertEqual(found.kernelDriver, "simulated")
        XCTAssertEqual(found.vfioAPIVersion, 0)
        XCTAssertTrue(found.type1v2)
        XCTAssertEqual(found.nesting.mechanism, .vfioType1Nesting)
        XCTAssertEqual(found.nesting.pasidBits, 20)
        XCTAssertEqual(found.nesting.addressWidths, [39, 48, 57])
        XCTAssertTrue(found.supports(format: "intel-vtd", version: 1))
        XCTAssertFalse(found.supports(format: "intel-vtd", version: 2))
        XCTAssertEqual(standard.openFileCount, 0, "the probe closes what it opened")

        var iommufdOnly = SimulatedHost.standard
        iommufdOnly.type1Nesting = false
        let second = SimulatedKernel(host: iommufdOnly)
        let viaIOMMUFD = CapabilityProbe(syscalls: second, inventory: SysfsInventory(syscalls: second)).discover()
        XCTAssertEqual(viaIOMMUFD.nesting.mechanism, .iommufd)
        XCTAssertTrue(viaIOMMUFD.iommufd)

        var none = iommufdOnly
        none.iommufd = false
        let third = SimulatedKernel(host: none)
        let unsupported = CapabilityProbe(syscalls: third, inventory: SysfsInventory(syscalls: third)).discover()
        XCTAssertFalse(unsupported.nesting.supported)
        XCTAssertTrue(unsupported.nesting.reason!.contains("no nesting capability"), unsupported.nesting.reason!)
        XCTAssertTrue(unsupported.type1v2)
    }
}
