@testable import BinderyKernel
import XCTest

/// Managed rebinding: the original driver is known before any sysfs write, a failed rebind
/// gives the device back, and a persisted plan survives a crash between the writes.
final class DriverBinderTests: XCTestCase {
    private let address = "0000:3d:00.0"

    private func binder(_ kernel: SimulatedKernel) -> DriverBinder {
        DriverBinder(inventory: SysfsInventory(syscalls: kernel))
    }

    func testPlanReadsTheOriginalDriverAndWritesNothing() throws {
        let kernel = SimulatedKernel()
        let before = kernel.snapshot()
        kernel.faults.startRecording()
        let plan = try binder(kernel).plan(address)
        let calls = kernel.faults.stopRecording()
        XCTAssertEqual(plan, DriverRebindPlan(address: address, originalDriver: "idxd"))
        XCTAssertTrue(plan.takesTheDevice)
        XCTAssertFalse(calls.isEmpty)
        XCTAssertTrue(calls.allSatisfy { !$0.hasPrefix("write") }, "\(calls)")
        XCTAssertEqual(kernel.snapshot(), before)
        XCTAssertFalse(try binder(kernel).plan("0000:3b:00.0").takesTheDevice, "already on vfio-pci")
    }

    func testApplyFailingAtEachSysfsStepGivesTheDeviceBack() throws {
        try assertEveryCallRollsBack(ExecutorFlow(
            name: "rebind to vfio-pci",
            mustCall: ["write driver_override", "write unbind", "write drivers_probe", "readlink driver"],
            run: { f in
                try DriverBinder(inventory: SysfsInventory(syscalls: f.kernel)).apply(DriverRebindPlan(address: self.address, originalDriver: "idxd"))
            },
            check: { f in XCTAssertEqual(f.kernel.driver(of: self.address), "vfio-pci") }))
    }

    func testAFailedRebindWhoseGiveBackFailsSaysSo() throws {
        let kernel = SimulatedKernel(faults: FaultPlan([.init(call: "write drivers_probe", errno: .EIO, trigger: .times(2))]))
        XCTAssertThrowsError(try binder(kernel).apply(binder(kernel).plan(address))) { error in
            XCTAssertEqual(error as? KernelError, .rollbackIncomplete(
                error: .file(operation: "write", path: "/sys/bus/pci/drivers_probe", errno: .EIO),
                undo: [.file(operation: "write", path: "/sys/bus/pci/drivers_probe", errno: .EIO)]))
        }
        XCTAssertNil(kernel.driver(of: address), "unbound, neither on idxd nor on vfio-pci")
        try binder(kernel).restore(address, to: "idxd")
        XCTAssertEqual(kernel.driver(of: address), "idxd")
    }

    func testAPersistedPlanSurvivesACrashBetweenUnbindAndProbe() throws {
        let kernel = SimulatedKernel()
        let persisted = try binder(kernel).plan(address)
        // What a daemon killed after the unbind leaves behind.
        let directory = SysfsInventory(syscalls: kernel).path(of: address)
        try kernel.write(directory + "/driver_override", "vfio-pci")
        try kernel.write(directory + "/driver/unbind", address)
        XCTAssertEqual(try binder(kernel).plan(address).originalDriver, nil, "a plan made now has lost idxd")

        try binder(kernel).apply(persisted)
        XCTAssertEqual(kernel.driver(of: address), "vfio-pci")
        try binder(kernel).restore(address, to: persisted.originalDriver)
        XCTAssertEqual(kernel.driver(of: address), "idxd")
        XCTAssertEqual(kernel.snapshot().devices[address]?.driverOverride, nil)
    }

    func testRestoreFailingAtEachStepFinishesWhenRetried() throws {
        let reference = SimulatedKernel()
        try binder(reference).apply(DriverRebindPlan(address: address, originalDriver: "idxd"))
        reference.faults.startRecording()
        try binder(reference).restore(address, to: "idxd")
        let calls = reference.faults.stopRecording()
        XCTAssertTrue(calls.contains("write unbind") && calls.contains("write drivers_probe"), "\(calls)")
        for (index, call) in calls.enumerated() {
            let occurrence = calls[..<index].filter { $0 == call }.count
            let kernel = SimulatedKernel()
            try binder(kernel).apply(DriverRebindPlan(address: address, originalDriver: "idxd"))
            kernel.faults.add(.init(call: call, errno: .EAGAIN, trigger: .script(Array(repeating: nil, count: occurrence) + [.EAGAIN])))
            XCTAssertThrowsError(try binder(kernel).restore(address, to: "idxd"), call) { error in
                assertNames(error, call: call, errno: .EAGAIN, "restore: \(call) #\(occurrence + 1)")
            }
            kernel.faults.clear()
            try binder(kernel).restore(address, to: "idxd")
            XCTAssertEqual(kernel.driver(of: address), "idxd", call)
            XCTAssertEqual(kernel.snapshot().devices[address]?.driverOverride, nil, call)
        }
    }
}
