@testable import BinderyKernel
import XCTest

/// When undoing a failed flow fails too, the error says so and carries both failures, and
/// the executor is left in a state a retry can finish from.
final class RollbackFailureTests: XCTestCase {
    private let device = "0000:3b:00.0"

    private func boundVM() throws -> FlowFixture {
        let f = FlowFixture(host: .standard)
        try f.makeVM()
        try f.context.attach(device)
        f.pasid = try f.context.allocatePASID()
        try f.context.bind(f.table(FlowFixture.firstTable))
        return f
    }

    func testARebindWhoseUndoFailsCarriesBothFailuresAndTheOldTableIsUnbound() throws {
        let f = try boundVM()
        f.kernel.faults.add(.init(call: "VFIO_IOMMU_NESTING_OP", errno: .EIO, trigger: .script([nil, .EBUSY, .EIO])))
        let resource = "container fd \(try f.context.container.fd) host PASID \(f.pasid)"
        XCTAssertThrowsError(try f.context.rebind(from: f.table(FlowFixture.firstTable), to: f.table(FlowFixture.secondTable))) { error in
            XCTAssertEqual(error as? KernelError, .rollbackIncomplete(
                error: .ioctl(call: "VFIO_IOMMU_NESTING_OP", errno: .EBUSY, resource: resource),
                undo: [.ioctl(call: "VFIO_IOMMU_NESTING_OP", errno: .EIO, resource: resource)]))
            XCTAssertEqual((error as? KernelError)?.call, "VFIO_IOMMU_NESTING_OP")
            XCTAssertEqual((error as? KernelError)?.errno, .EBUSY)
            XCTAssertTrue("\(error)".contains("not as it was before"), "\(error)")
        }
        XCTAssertEqual(f.kernel.boundTables(of: device), [:], "the caller must know the PASID is now unbound")
        try f.context.bind(f.table(FlowFixture.secondTable))
        XCTAssertEqual(f.kernel.boundTables(of: device), [f.pasid: f.table(FlowFixture.secondTable)])
        f.tearDown()
        XCTAssertTrue(f.kernel.snapshot().holdsNothing)
    }

    func testADetachWhoseUndoFailsIsFinishedByDetachingAgain() throws {
        let f = try boundVM()
        f.kernel.faults.add(.init(call: "VFIO_GROUP_UNSET_CONTAINER", errno: .EBUSY, trigger: .times(1)))
        f.kernel.faults.add(.init(call: "VFIO_GROUP_GET_DEVICE_FD", errno: .EMFILE, trigger: .times(1)))
        XCTAssertThrowsError(try f.context.detach(device)) { error in
            guard case let .rollbackIncomplete(cause, undo)? = error as? KernelError else { return XCTFail("\(error)") }
            XCTAssertEqual(cause.call, "VFIO_GROUP_UNSET_CONTAINER")
            XCTAssertEqual(cause.errno, .EBUSY)
            XCTAssertEqual(undo.map(\.call), ["VFIO_GROUP_GET_DEVICE_FD"])
            XCTAssertEqual(undo.map(\.errno), [.EMFILE])
        }
        // Half detached: the device fd is closed, the group still in the container.
        XCTAssertEqual(try f.context.attachedDevices, [])
        XCTAssertEqual(try f.context.state.deviceGroups, [device: 10])
        XCTAssertEqual(f.kernel.snapshot().groups[10]?.inContainer, true)
        try f.context.detach(device)
        XCTAssertEqual(try f.context.state.deviceGroups, [:])
        XCTAssertFalse(try f.context.isMemoryMapped)
        XCTAssertEqual(f.kernel.snapshot().openFiles, ["container"])
        // And the device attaches again from there.
        try f.context.attach(device)
        XCTAssertEqual(try f.context.attachedDevices, [device])
        f.tearDown()
        XCTAssertTrue(f.kernel.snapshot().holdsNothing)
    }

    func testAnAttachWhoseUnmapFailsStillLeavesTheContainerWithoutItsIOMMU() throws {
        let f = FlowFixture(host: .standard)
        try f.makeVM()
        f.kernel.faults.add(.init(call: "VFIO_GROUP_GET_DEVICE_FD", errno: .EAGAIN, trigger: .times(1)))
        f.kernel.faults.add(.init(call: "VFIO_IOMMU_UNMAP_DMA", errno: .EIO, trigger: .times(1)))
        XCTAssertThrowsError(try f.context.attach(device)) { error in
            guard case let .rollbackIncomplete(cause, undo)? = error as? KernelError else { return XCTFail("\(error)") }
            XCTAssertEqual(cause.call, "VFIO_GROUP_GET_DEVICE_FD")
            XCTAssertEqual(undo.map(\.call), ["VFIO_IOMMU_UNMAP_DMA"])
        }
        // Taking the last group out dropped the mapping the unmap left behind; the next attach starts clean.
        XCTAssertEqual(f.kernel.snapshot().containers, [.init(groups: [], iommuType: nil, mappings: [], pasids: [])])
        XCTAssertFalse(try f.context.isMemoryMapped)
        try f.context.attach(device)
        XCTAssertEqual(f.kernel.snapshot().containers.first?.mappings.count, 2)
        f.tearDown()
        XCTAssertTrue(f.kernel.snapshot().holdsNothing)
    }
}
