import BinderyKernel
import XCTest

/// The host's own devices are never handed to a VM.
final class DevicePolicyTests: XCTestCase {
    private let kernel = SimulatedKernel()
    private lazy var inventory = SysfsInventory(syscalls: kernel)

    private func refusal(_ address: String, _ policy: DevicePolicy = DevicePolicy()) throws -> String? {
        policy.refusal(for: try inventory.device(address), hostUse: inventory.hostUse(of: address))?.rule
    }

    func testTheDefaultRefusesHostClassesAndDevicesInUse() throws {
        XCTAssertEqual(inventory.hostUse(of: "0000:01:00.0"), ["block device nvme0n1"])
        XCTAssertEqual(inventory.hostUse(of: "0000:02:00.0"), ["network interface eno1 (up)"])
        XCTAssertEqual(try refusal("0000:01:00.0"), "in-use", "the NVMe boot controller backs nvme0n1")
        XCTAssertEqual(try refusal("0000:02:00.0"), "in-use", "the management NIC's eno1 is up")
        XCTAssertNil(try refusal("0000:3b:00.0"))
        XCTAssertNil(try refusal("0000:af:00.0"), "a NIC with no interface up may go to a VM")
        var storage = try inventory.device("0000:3d:00.0")
        storage.classCode = 0x010802
        XCTAssertEqual(DevicePolicy().refusal(for: storage, hostUse: [])?.rule, "host-class")
        storage.classCode = 0x030000
        XCTAssertEqual(DevicePolicy().refusal(for: storage, hostUse: [])?.rule, "host-class")
        storage.iommuGroup = nil
        XCTAssertEqual(DevicePolicy().refusal(for: storage, hostUse: [])?.rule, "no-iommu-group")
    }

    func testAnAllowListNamesTheAssignableDevicesButNeverOnesInUse() throws {
        let policy = try DevicePolicy(parsing: ["0000:3b:00.0", "15b3:101d", "class:0x0108", "0000:01:00.0"])
        XCTAssertNil(try refusal("0000:3b:00.0", policy))
        XCTAssertNil(try refusal("0000:5e:00.1", policy), "by vendor:device")
        XCTAssertEqual(try refusal("0000:3c:00.0", policy), "not-allowed")
        XCTAssertEqual(try refusal("0000:01:00.0", policy), "in-use", "listed, but the host uses it")
        var nvme = try inventory.device("0000:01:00.0")
        nvme.address = "0000:09:00.0"
        XCTAssertNil(policy.refusal(for: nvme, hostUse: []), "class:0x0108 allows an unused NVMe controller")
    }

    func testWhatTheHostUsesFollowsTheDriver() throws {
        let binder = DriverBinder(inventory: inventory)
        try binder.apply(try binder.plan("0000:02:00.0"))
        XCTAssertEqual(inventory.hostUse(of: "0000:02:00.0"), [], "on vfio-pci the interface is gone")
    }

    func testEntriesThatDoNotParseAreRefusedWithTheEntry() {
        for entry in ["3b:00.0", "8086:b25", "class:0x1", "class:010802", "0000:3b:00.8", "anything"] {
            XCTAssertThrowsError(try DevicePolicy(parsing: [entry]), entry) { error in
                XCTAssertTrue("\(error)".contains(entry), "\(error)")
            }
        }
    }
}

/// The probe learns the binding path and the PASID scope from the kernel's answers.
final class HostProfileProbeTests: XCTestCase {
    private func probe(_ profile: SimulatedHostProfile) -> HostCapabilities {
        let kernel = SimulatedKernel(host: profile.host)
        return CapabilityProbe(syscalls: kernel, inventory: SysfsInventory(syscalls: kernel)).discover()
    }

    func testEachProfileReportsItsPathScopeAndWhyNot() {
        let type1 = probe(.type1Nesting)
        XCTAssertEqual(type1.nesting.mechanism, .vfioType1Nesting)
        XCTAssertEqual(type1.nesting.pasidScope, .perPASID)
        XCTAssertFalse(type1.iommufd)

        let iommufd = probe(.iommufd)
        XCTAssertEqual(iommufd.nesting.mechanism, .iommufd)
        XCTAssertEqual(iommufd.nesting.pasidScope, .perPASID, "learned by attaching a stage-1 at a PASID")
        XCTAssertTrue(iommufd.nesting.supported)

        let deviceOnly = probe(.iommufdDeviceOnly)
        XCTAssertEqual(deviceOnly.nesting.mechanism, .iommufd)
        XCTAssertEqual(deviceOnly.nesting.pasidScope, .device)
        XCTAssertFalse(deviceOnly.nesting.supported)
        XCTAssertEqual(deviceOnly.nesting.formats, [], "nothing the API may accept")
        XCTAssertTrue(deviceOnly.nesting.reason?.contains("IOMMU_HWPT_ALLOC_PASID answered EOPNOTSUPP") ?? false, deviceOnly.nesting.reason ?? "")

        let none = probe(.type1Only)
        XCTAssertNil(none.nesting.mechanism)
        XCTAssertFalse(none.nesting.supported)
        XCTAssertTrue(none.nesting.reason?.contains("VFIO_IOMMU_GET_INFO") ?? false, none.nesting.reason ?? "")
    }
}
