@testable import BinderyKernel
import CBinderyKernel
import XCTest

/// The simulated kernel's iommufd against what a real 6.12 with CONFIG_IOMMUFD answered in
/// `make kernel-test` (`bindery-bench kernel-check --iommufd`; KERNEL.md): QEMU 7.2's
/// intel-iommu (no nesting, no per-PASID attach) and a device without PASID.
final class IOMMUFDBehaviourTests: XCTestCase {
    let address = "0000:3b:00.0"
    var kernel: SimulatedKernel!
    var iommufd: IOMMUFD!
    var cdev: VFIODevice!

    override func setUpWithError() throws {
        var host = SimulatedHostProfile.iommufdDeviceOnly.host
        host.hardwareNesting = false
        for index in host.devices.indices where host.devices[index].address == address { host.devices[index].pasidWidth = 0 }
        kernel = SimulatedKernel(host: host)
        iommufd = try IOMMUFD(syscalls: kernel)
        let path = try XCTUnwrap(SysfsInventory(syscalls: kernel).vfioCdevPath(of: address))
        cdev = try VFIODevice(cdev: path, address: address, syscalls: kernel)
    }

    override func tearDown() {
        cdev?.close()
        iommufd?.close()
    }

    private func expect(_ errno: Errno, call: String, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual((error as? KernelError)?.errno, errno, "\(error)", file: file, line: line)
            XCTAssertEqual((error as? KernelError)?.call, call, file: file, line: line)
        }
    }

    /// `IOMMU_GET_HW_INFO` on raw bytes: nil, or the errno.
    private func hardwareInfo(size: UInt32, flags: UInt32 = 0, device: UInt32, trailing: UInt8 = 0) -> Errno? {
        var bytes = [UInt8](repeating: 0, count: 64)
        let result = bytes.withUnsafeMutableBytes { buffer in
            let raw = RawBytes(buffer.baseAddress!)
            raw.set(0, u32: size)
            raw.set(4, u32: flags)
            raw.set(8, u32: device)
            if size > 40 { raw.set(Int(size) - 1, u8: trailing) }
            return kernel.ioctl(iommufd.fd, .getHWInfo, buffer.baseAddress!)
        }
        return result < 0 ? Errno(-result) : nil
    }

    /// `IOMMU_HWPT_ALLOC` of a plain paging HWPT (no flags, no data) over `pt`.
    private func allocatePaging(deviceID: UInt32, over pt: UInt32) -> Result<UInt32, Errno> {
        var alloc = iommu_hwpt_alloc()
        alloc.size = UInt32(MemoryLayout<iommu_hwpt_alloc>.size)
        alloc.dev_id = deviceID
        alloc.pt_id = pt
        let result = withUnsafeMutableBytes(of: &alloc) { kernel.ioctl(iommufd.fd, .hwptAlloc, $0.baseAddress!) }
        return result < 0 ? .failure(Errno(-result)) : .success(alloc.out_hwpt_id)
    }

    func testACdevAnswersOnlyBindUntilBound() throws {
        expect(.EINVAL, call: "VFIO_DEVICE_GET_INFO") { _ = try self.cdev.info() }
        let id = try iommufd.bind(cdev)
        XCTAssertEqual(id, 1)
        expect(.EINVAL, call: "VFIO_DEVICE_BIND_IOMMUFD") { _ = try self.iommufd.bind(self.cdev) }
        XCTAssertTrue(try cdev.info().isPCI)
    }

    func testGetHWInfoSizeRules() throws {
        let id = try iommufd.bind(cdev)
        XCTAssertEqual(hardwareInfo(size: 31, device: id), .EINVAL)
        XCTAssertNil(hardwareInfo(size: 32, device: id), "32 bytes (up to __reserved) are enough")
        XCTAssertNil(hardwareInfo(size: 48, device: id), "a longer struct with a zero tail is fine")
        XCTAssertEqual(hardwareInfo(size: 48, device: id, trailing: 1), .E2BIG)
        XCTAssertEqual(hardwareInfo(size: 40, flags: 1 << 31, device: id), .EOPNOTSUPP)
        XCTAssertEqual(hardwareInfo(size: 40, device: 4242), .ENOENT)
        let info = try iommufd.hardwareInfo(deviceID: id)
        XCTAssertEqual(info.dataType, IOMMU_HW_INFO_TYPE_INTEL_VTD.rawValue)
        XCTAssertEqual(info.extendedCapabilityRegister & (1 << 26), 0, "no NEST")
        XCTAssertEqual(info.maxPASIDLog2, 0)
    }

    func testAnIOASTakesAnyAlignmentUntilADomainAndReservesTheMSIWindowOnAttach() throws {
        let id = try iommufd.bind(cdev)
        let ioas = try iommufd.allocateIOAS()
        try iommufd.map(ioas: ioas, vaddr: 0x7f00_0000_0000, iova: 0x10_0000, length: 2 << 20)
        expect(.EEXIST, call: "IOMMU_IOAS_MAP") { try self.iommufd.map(ioas: ioas, vaddr: 0x7f00_0000_0000, iova: 0x10_1000, length: 0x1000) }
        try iommufd.map(ioas: ioas, vaddr: 0x7f10_0000_0000, iova: 0x40_0800, length: 0x1000)
        expect(.EADDRINUSE, call: "VFIO_DEVICE_ATTACH_IOMMUFD_PT") { try self.iommufd.attach(self.cdev, to: ioas) }
        XCTAssertEqual(allocatePaging(deviceID: id, over: ioas), .failure(.EADDRINUSE))
        XCTAssertEqual(try iommufd.unmap(ioas: ioas, iova: 0x40_0800, length: 0x1000), 0x1000)
        try iommufd.attach(cdev, to: ioas)
        expect(.EINVAL, call: "IOMMU_IOAS_MAP") { try self.iommufd.map(ioas: ioas, vaddr: 0x7f10_0000_0000, iova: 0x40_0800, length: 0x1000) }
        expect(.EINVAL, call: "IOMMU_IOAS_MAP") { try self.iommufd.map(ioas: ioas, vaddr: 0x7f10_0000_0000, iova: 0xfee0_0000, length: 0x1000) }
        try iommufd.detach(cdev)
        try iommufd.map(ioas: ioas, vaddr: 0x7f10_0000_0000, iova: 0xfee0_0000, length: 0x1000)
        expect(.EADDRINUSE, call: "VFIO_DEVICE_ATTACH_IOMMUFD_PT") { try self.iommufd.attach(self.cdev, to: ioas) }
    }

    func testAttachingToAnIOASMakesAnAutomaticHWPTThatAReplaceDrops() throws {
        let id = try iommufd.bind(cdev)
        let ioas = try iommufd.allocateIOAS()
        try iommufd.map(ioas: ioas, vaddr: 0x7f00_0000_0000, iova: 0x10_0000, length: 2 << 20)
        let automatic = try iommufd.attach(cdev, to: ioas)
        XCTAssertNotEqual(automatic, ioas, "the kernel answers the id of the HWPT it made")
        expect(.EBUSY, call: "IOMMU_DESTROY") { try self.iommufd.destroy(automatic) }
        let paging = try allocatePaging(deviceID: id, over: ioas).get()
        XCTAssertEqual(try iommufd.attach(cdev, to: paging), paging, "attaching to another HWPT replaces the first")
        expect(.ENOENT, call: "IOMMU_DESTROY") { try self.iommufd.destroy(automatic) }
        expect(.EBUSY, call: "IOMMU_DESTROY") { try self.iommufd.destroy(paging) }
        expect(.EBUSY, call: "IOMMU_DESTROY") { try self.iommufd.destroy(ioas) }
        try iommufd.detach(cdev)
        try iommufd.detach(cdev)   // detaching a detached device is a no-op
        try iommufd.destroy(paging)
        // Attach to the IOAS again, then detach: the automatic HWPT goes with the detach.
        let second = try iommufd.attach(cdev, to: ioas)
        try iommufd.detach(cdev)
        expect(.ENOENT, call: "IOMMU_DESTROY") { try self.iommufd.destroy(second) }
        XCTAssertEqual(try iommufd.unmap(ioas: ioas, iova: 0x10_0000, length: 2 << 20), 2 << 20)
        expect(.ENOENT, call: "IOMMU_IOAS_UNMAP") { try self.iommufd.unmap(ioas: ioas, iova: 0x10_0000, length: 2 << 20) }
        try iommufd.destroy(ioas)
        expect(.ENOENT, call: "IOMMU_DESTROY") { try self.iommufd.destroy(ioas) }
    }

    func testNestingAndPerPASIDAreRefusedAsOn612() throws {
        let id = try iommufd.bind(cdev)
        let ioas = try iommufd.allocateIOAS()
        try iommufd.attach(cdev, to: ioas)
        expect(.EOPNOTSUPP, call: "IOMMU_HWPT_ALLOC") { _ = try self.iommufd.allocateNestingParent(deviceID: id, ioas: ioas) }
        XCTAssertEqual(allocatePaging(deviceID: id, over: 4242), .failure(.EINVAL), "an unknown pt_id")
        let paging = try allocatePaging(deviceID: id, over: ioas).get()
        expect(.EINVAL, call: "IOMMU_HWPT_ALLOC") {
            _ = try self.iommufd.allocateStage1(deviceID: id, parent: paging, pageTable: 0x1000, addressWidth: 48, flags: 0, forPASID: false)
        }
        expect(.EOPNOTSUPP, call: "IOMMU_HWPT_ALLOC") {
            _ = try self.iommufd.allocateStage1(deviceID: id, parent: paging, pageTable: 0x1000, addressWidth: 48, flags: 0, forPASID: true)
        }
        expect(.EINVAL, call: "VFIO_DEVICE_ATTACH_IOMMUFD_PT") { try self.iommufd.attach(self.cdev, to: paging, pasid: 1) }
    }
}
