@testable import BinderyKernel
import CBinderyKernel
import XCTest

/// The simulated kernel against the type1 errnos measured on real kernels (KERNEL.md).
final class Type1BehaviourTests: XCTestCase {
    var kernel: SimulatedKernel!

    override func setUp() { kernel = SimulatedKernel() }

    private func expect(_ errno: Errno, call: String, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual((error as? KernelError)?.errno, errno, "\(error)", file: file, line: line)
            XCTAssertEqual((error as? KernelError)?.call, call, file: file, line: line)
        }
    }

    func testContainerSequenceAndErrnos() throws {
        let container = try VFIOContainer(syscalls: kernel)
        XCTAssertTrue(try container.checkExtension(VFIO_TYPE1v2_IOMMU))
        XCTAssertTrue(try container.checkExtension(VFIO_TYPE1_NESTING_IOMMU))
        XCTAssertFalse(try container.checkExtension(99))
        // Unknown ioctl before SET_IOMMU is EINVAL; SET_IOMMU before any group is EINVAL.
        expect(.EINVAL, call: "VFIO_IOMMU_GET_INFO") { _ = try container.info() }
        expect(.EINVAL, call: "VFIO_SET_IOMMU") { try container.setIOMMU(VFIO_TYPE1v2_IOMMU) }

        let group = try VFIOGroup(number: 10, syscalls: kernel)
        expect(.EBUSY, call: "open") { _ = try VFIOGroup(number: 10, syscalls: self.kernel) }
        XCTAssertEqual(try group.status(), .init(isViable: true, hasContainer: false))
        expect(.EINVAL, call: "VFIO_GROUP_GET_DEVICE_FD") { _ = try group.openDevice("0000:3b:00.0") }
        try group.setContainer(container)
        expect(.EINVAL, call: "VFIO_GROUP_SET_CONTAINER") { try group.setContainer(container) }
        expect(.ENODEV, call: "VFIO_SET_IOMMU") { try container.setIOMMU(42) }
        try container.setIOMMU(VFIO_TYPE1v2_IOMMU)
        expect(.EINVAL, call: "VFIO_SET_IOMMU") { try container.setIOMMU(VFIO_TYPE1v2_IOMMU) }

        // Two-pass GET_INFO with a capability chain; no nesting capability on type1v2.
        let info = try container.info()
        XCTAssertEqual(info.iovaRanges?.count, 2)
        XCTAssertNil(info.nesting)
        XCTAssertTrue(info.capabilities.contains(.dmaAvailable(65535)))

        try container.mapDMA(vaddr: 0x7000_0000_0000, iova: 0, size: 0x20_0000)
        expect(.EEXIST, call: "VFIO_IOMMU_MAP_DMA") { try container.mapDMA(vaddr: 0x7000_1000_0000, iova: 0x10_0000, size: 0x1000) }
        expect(.EINVAL, call: "VFIO_IOMMU_MAP_DMA") { try container.mapDMA(vaddr: 0x7000_2000_0000, iova: 0x40_0800, size: 0x1000) }
        expect(.EINVAL, call: "VFIO_IOMMU_MAP_DMA") { try container.mapDMA(vaddr: 0x7000_2000_0000, iova: 0xfee0_0000, size: 0x1000) }
        XCTAssertTrue(try container.info().capabilities.contains(.dmaAvailable(65534)))
        expect(.EINVAL, call: "VFIO_IOMMU_UNMAP_DMA") { try container.unmapDMA(iova: 0x10_0000, size: 0x1000) }
        XCTAssertEqual(try container.unmapDMA(iova: 0x1000_0000, size: 0x1000), 0, "a never-mapped range unmaps nothing")
        XCTAssertEqual(try container.unmapDMA(iova: 0, size: 0x20_0000), 0x20_0000)

        expect(.ENODEV, call: "VFIO_GROUP_GET_DEVICE_FD") { _ = try group.openDevice("0000:3c:00.0") }
        let device = try group.openDevice("0000:3b:00.0")
        XCTAssertTrue(try device.info().isPCI)
        expect(.EBUSY, call: "VFIO_GROUP_UNSET_CONTAINER") { try group.unsetContainer() }
        device.close()
        try group.unsetContainer()
        expect(.EINVAL, call: "VFIO_GROUP_UNSET_CONTAINER") { try group.unsetContainer() }
    }

    func testUnknownIoctlIsENOTTYAfterSetIOMMUAndOnGroupAndDevice() throws {
        let container = try VFIOContainer(syscalls: kernel)
        let group = try VFIOGroup(number: 10, syscalls: kernel)
        try group.setContainer(container)
        try container.setIOMMU(VFIO_TYPE1v2_IOMMU)
        var scratch = [UInt8](repeating: 0, count: 64)
        scratch[0] = 64
        let bogus = IoctlRequest("BOGUS", 0x3bff)
        scratch.withUnsafeMutableBytes { bytes in
            XCTAssertEqual(kernel.ioctl(container.fd, bogus, bytes.baseAddress!), -Errno.ENOTTY.code)
            XCTAssertEqual(kernel.ioctl(group.fd, bogus, bytes.baseAddress!), -Errno.ENOTTY.code)
            // The nesting ABI on a type1v2 container is an unknown ioctl too.
            XCTAssertEqual(kernel.ioctl(container.fd, .nestingOp, bytes.baseAddress!), -Errno.ENOTTY.code)
        }
    }

    func testShortArgszIsEINVAL() throws {
        let group = try VFIOGroup(number: 10, syscalls: kernel)
        var status = vfio_group_status()
        status.argsz = 4
        XCTAssertEqual(withUnsafeMutableBytes(of: &status) { kernel.ioctl(group.fd, .groupGetStatus, $0.baseAddress!) }, -Errno.EINVAL.code)
        let container = try VFIOContainer(syscalls: kernel)
        try group.setContainer(container)
        try container.setIOMMU(VFIO_TYPE1v2_IOMMU)
        var info = vfio_iommu_type1_info()
        info.argsz = 8
        XCTAssertEqual(withUnsafeMutableBytes(of: &info) { kernel.ioctl(container.fd, .iommuGetInfo, $0.baseAddress!) }, -Errno.EINVAL.code)
    }

    func testNestingIOMMUTypeIsRefusedWithoutNestingHardware() throws {
        var host = SimulatedHost.standard
        host.type1Nesting = false
        kernel = SimulatedKernel(host: host)
        let container = try VFIOContainer(syscalls: kernel)
        XCTAssertTrue(try container.checkExtension(VFIO_TYPE1_NESTING_IOMMU), "CHECK_EXTENSION says 1, as on real kernels")
        let group = try VFIOGroup(number: 10, syscalls: kernel)
        try group.setContainer(container)
        expect(.EINVAL, call: "VFIO_SET_IOMMU") { try container.setIOMMU(VFIO_TYPE1_NESTING_IOMMU) }
    }

    func testGroupWithAMemberOnAnotherDriverIsNotViable() throws {
        kernel.setDriver("vfio-pci", of: "0000:5e:00.0")
        let group = try VFIOGroup(number: 14, syscalls: kernel)
        XCTAssertEqual(try group.status(), .init(isViable: false, hasContainer: false))
        let container = try VFIOContainer(syscalls: kernel)
        expect(.EBUSY, call: "VFIO_GROUP_SET_CONTAINER") { try group.setContainer(container) }
        expect(.ENOENT, call: "open") { _ = try VFIOGroup(number: 12, syscalls: self.kernel) }
    }

    func testClosingTheContainerDropsMappingsPASIDsAndBindings() throws {
        let vm = try VMContext(syscalls: kernel, inventory: SysfsInventory(syscalls: kernel),
                               memory: [GuestMemoryRegion(guestAddress: 0, size: 1 << 30)])
        try vm.attach("0000:3b:00.0")
        let pasid = try vm.allocatePASID()
        try vm.bind(GuestPageTableBind(addressWidth: 48, pageTable: 0x1000, hostPASID: UInt64(pasid)))
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0").count, 1)
        XCTAssertEqual(kernel.allocatedPASIDCount, 1)
        vm.close()
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0"), [:])
        XCTAssertEqual(kernel.allocatedPASIDCount, 0)
        XCTAssertEqual(kernel.openFileCount, 0)
    }

    func testTheLastGroupLeavingTearsTheIOMMUDownUntilSetAgain() throws {
        let container = try VFIOContainer(syscalls: kernel)
        let group = try VFIOGroup(number: 10, syscalls: kernel)
        try group.setContainer(container)
        try container.setIOMMU(VFIO_TYPE1_NESTING_IOMMU)
        try container.mapDMA(vaddr: 0x7000_0000_0000, iova: 0, size: 0x20_0000)
        _ = try container.allocatePASID(in: 1...10)
        try group.unsetContainer()
        XCTAssertEqual(kernel.snapshot().containers, [.init(groups: [], iommuType: nil, mappings: [], pasids: [])])
        XCTAssertEqual(kernel.allocatedPASIDCount, 0)
        // Without an IOMMU the container answers EINVAL, and a group in it opens no device.
        expect(.EINVAL, call: "VFIO_IOMMU_MAP_DMA") { try container.mapDMA(vaddr: 0x7000_0000_0000, iova: 0, size: 0x20_0000) }
        try group.setContainer(container)
        expect(.EINVAL, call: "VFIO_GROUP_GET_DEVICE_FD") { _ = try group.openDevice("0000:3b:00.0") }
        try container.setIOMMU(VFIO_TYPE1v2_IOMMU)
        XCTAssertTrue(try container.info().capabilities.contains(.dmaAvailable(65535)), "the old mappings are gone")
        _ = try group.openDevice("0000:3b:00.0")
    }

    func testClosingAGroupWithADeviceOpenWaitsForTheDevice() throws {
        let container = try VFIOContainer(syscalls: kernel)
        let group = try VFIOGroup(number: 10, syscalls: kernel)
        try group.setContainer(container)
        try container.setIOMMU(VFIO_TYPE1v2_IOMMU)
        let device = try group.openDevice("0000:3b:00.0")
        group.close()
        XCTAssertEqual(kernel.snapshot().groups[10], .init(isOpen: true, openDevices: 1, inContainer: true),
                       "device fds hold the group file")
        expect(.EBUSY, call: "open") { _ = try VFIOGroup(number: 10, syscalls: self.kernel) }
        device.close()
        XCTAssertEqual(kernel.snapshot().groups[10], .init(isOpen: false, openDevices: 0, inContainer: false))
        XCTAssertNil(kernel.snapshot().containers.first?.iommuType)
        _ = try VFIOGroup(number: 10, syscalls: kernel)
    }
}
