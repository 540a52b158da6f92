@testable import BinderyKernel
import Foundation
import XCTest

/// Inventory from a sysfs tree the test builds on disk (read through `LinuxSyscalls`), and
/// managed rebinding against the simulated kernel's sysfs.
final class InventoryTests: XCTestCase {
    private var root: String!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "bindery-sysfs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Writes one device directory with the files and links sysfs has.
    private func addDevice(_ address: String, vendor: String, device: String, classCode: String, group: Int,
                           driver: String?, numa: String, config: [UInt8]) throws {
        let fm = FileManager.default
        let directory = "\(root!)/devices/pci0000:00/\(address)"
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, value) in [("vendor", vendor), ("device", device), ("class", classCode), ("numa_node", numa)] {
            try (value + "\n").write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
        }
        try Data(config).write(to: URL(fileURLWithPath: "\(directory)/config"))
        try fm.createDirectory(atPath: "\(root!)/kernel/iommu_groups/\(group)/devices", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: "\(root!)/kernel/iommu_groups/\(group)/devices/\(address)", withDestinationPath: directory)
        try fm.createSymbolicLink(atPath: "\(directory)/iommu_group", withDestinationPath: "../../../kernel/iommu_groups/\(group)")
        if let driver {
            try fm.createDirectory(atPath: "\(root!)/bus/pci/drivers/\(driver)", withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: "\(directory)/driver", withDestinationPath: "../../../bus/pci/drivers/\(driver)")
        }
        try fm.createDirectory(atPath: "\(root!)/bus/pci/devices", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: "\(root!)/bus/pci/devices/\(address)", withDestinationPath: "../../../devices/pci0000:00/\(address)")
    }

    /// Config space with extended capabilities written by hand: ATS at 0x100 → PASID at
    /// 0x140 (width 20, exec, priv) → PRI at 0x160.
    private func configWithCapabilities() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 4096)
        func put32(_ offset: Int, _ value: UInt32) { for i in 0..<4 { bytes[offset + i] = UInt8((value >> (8 * UInt32(i))) & 0xff) } }
        put32(0x100, 0x000F | 1 << 16 | 0x140 << 20)
        put32(0x140, 0x001B | 1 << 16 | 0x160 << 20)
        put32(0x144, (20 << 8) | 0b110)
        put32(0x160, 0x0013 | 1 << 16 | 0 << 20)
        return bytes
    }

    func testInventoryReadsDevicesGroupsDriversAndCapabilities() throws {
        try addDevice("0000:3b:00.0", vendor: "0x8086", device: "0x0b25", classCode: "0x088000", group: 7,
                      driver: "idxd", numa: "1", config: configWithCapabilities())
        try addDevice("0000:00:02.0", vendor: "0x1234", device: "0x11e8", classCode: "0x00ff00", group: 3,
                      driver: nil, numa: "-1", config: [UInt8](repeating: 0, count: 256))
        try addDevice("0000:00:03.0", vendor: "0x1af4", device: "0x1000", classCode: "0x020000", group: 3,
                      driver: "virtio-pci", numa: "-1", config: [UInt8](repeating: 0, count: 64))
        let inventory = SysfsInventory(syscalls: LinuxSyscalls(), root: root)
        let devices = try inventory.devices()
        XCTAssertEqual(devices.map(\.address), ["0000:00:02.0", "0000:00:03.0", "0000:3b:00.0"])
        let dsa = devices[2]
        XCTAssertEqual(dsa.vendorID, 0x8086)
        XCTAssertEqual(dsa.deviceID, 0x0b25)
        XCTAssertEqual(dsa.classCode, 0x088000)
        XCTAssertEqual(dsa.iommuGroup, 7)
        XCTAssertEqual(dsa.driver, "idxd")
        XCTAssertEqual(dsa.numaNode, 1)
        XCTAssertEqual(dsa.capabilities, {
            var c = PCIExtendedCapabilities()
            c.pasidSupported = true; c.pasidWidth = 20; c.pasidExecute = true; c.pasidPrivileged = true
            c.atsSupported = true; c.priSupported = true
            return c
        }())
        XCTAssertEqual(devices[0].driver, nil)
        XCTAssertEqual(devices[0].numaNode, -1)
        XCTAssertEqual(devices[0].capabilities, PCIExtendedCapabilities(), "no extended capabilities")
        XCTAssertEqual(devices[1].capabilities, PCIExtendedCapabilities(), "64 bytes of config: nothing to walk")
        XCTAssertEqual(try inventory.members(ofGroup: 3), ["0000:00:02.0", "0000:00:03.0"])
    }

    func testMalformedExtendedCapabilityListsDoNotHang() {
        var looping = [UInt8](repeating: 0, count: 4096)
        looping[0x100] = 0x1B; looping[0x102] = 0x01; looping[0x103] = 0x10  // next = 0x100: a loop
        XCTAssertTrue(PCIExtendedCapabilities(config: looping).pasidSupported)
        var outOfRange = [UInt8](repeating: 0, count: 0x108)
        outOfRange[0x100] = 0x0F; outOfRange[0x103] = 0xff
        XCTAssertTrue(PCIExtendedCapabilities(config: outOfRange).atsSupported)
        XCTAssertEqual(PCIExtendedCapabilities(config: [UInt8](repeating: 0xff, count: 4096)), PCIExtendedCapabilities())
    }

    func testMissingSysfsTreeNamesThePath() {
        let inventory = SysfsInventory(syscalls: LinuxSyscalls(), root: root + "/absent")
        XCTAssertThrowsError(try inventory.devices()) { error in
            XCTAssertEqual(error as? KernelError, .file(operation: "list", path: root + "/absent/bus/pci/devices", errno: .ENOENT))
        }
    }

    func testSimulatedHostInventoryMatchesItsConfig() throws {
        let kernel = SimulatedKernel()
        let devices = try SysfsInventory(syscalls: kernel).devices()
        XCTAssertEqual(devices.count, 9, "seven for VMs, and the host's own NVMe boot controller and management NIC")
        let withPASID = devices.filter { $0.capabilities.pasidSupported }
        XCTAssertEqual(withPASID.filter { $0.capabilities.pasidWidth == 20 }.count, 4)
        XCTAssertEqual(Dictionary(grouping: devices, by: { $0.iommuGroup! }).values.filter { $0.count == 2 }.count, 1)
        XCTAssertEqual(devices.first { $0.address == "0000:af:00.0" }?.capabilities.pasidSupported, false)
    }

    func testManagedRebindingToVFIOAndBack() throws {
        let kernel = SimulatedKernel()
        let binder = DriverBinder(inventory: SysfsInventory(syscalls: kernel))
        XCTAssertEqual(try binder.bindToVFIO("0000:3d:00.0"), "idxd")
        XCTAssertEqual(kernel.driver(of: "0000:3d:00.0"), "vfio-pci")
        XCTAssertEqual(try binder.bindToVFIO("0000:3d:00.0"), "vfio-pci", "already there: nothing to do")
        try binder.restore("0000:3d:00.0", to: "idxd")
        XCTAssertEqual(kernel.driver(of: "0000:3d:00.0"), "idxd")
        // A device that had no driver goes back to none.
        kernel.setDriver(nil, of: "0000:3e:00.0")
        XCTAssertNil(try binder.bindToVFIO("0000:3e:00.0"))
        try binder.restore("0000:3e:00.0", to: nil)
        XCTAssertNil(kernel.driver(of: "0000:3e:00.0"))
    }

    func testFailedProbeRestoresTheOriginalDriver() throws {
        let kernel = SimulatedKernel(faults: FaultPlan([.init(call: "write drivers_probe", errno: .EIO, trigger: .times(1))]))
        let binder = DriverBinder(inventory: SysfsInventory(syscalls: kernel))
        XCTAssertThrowsError(try binder.bindToVFIO("0000:3d:00.0")) { error in
            XCTAssertEqual(error as? KernelError, .file(operation: "write", path: "/sys/bus/pci/drivers_probe", errno: .EIO))
        }
        XCTAssertEqual(kernel.driver(of: "0000:3d:00.0"), "idxd", "given back to its original driver")
    }

    func testUnbindOfADeviceInUseIsRefused() throws {
        let kernel = SimulatedKernel()
        let group = try VFIOGroup(number: 10, syscalls: kernel)
        let binder = DriverBinder(inventory: SysfsInventory(syscalls: kernel))
        XCTAssertThrowsError(try binder.restore("0000:3b:00.0", to: "idxd")) { error in
            XCTAssertEqual((error as? KernelError)?.errno, .EBUSY)
        }
        group.close()
        try binder.restore("0000:3b:00.0", to: "idxd")
        XCTAssertEqual(kernel.driver(of: "0000:3b:00.0"), "idxd")
    }
}
