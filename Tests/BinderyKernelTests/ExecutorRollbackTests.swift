@testable import BinderyKernel
import XCTest

/// Every executor flow, failed at each call it makes in turn: the error names the call and
/// errno, the kernel and the executor are exactly as before the attempt, the retry succeeds
/// once the fault is lifted, and teardown leaks nothing.
final class ExecutorRollbackTests: XCTestCase {
    private static let first = "0000:3b:00.0", second = "0000:3c:00.0"
    private static let pairA = "0000:5e:00.0", pairB = "0000:5e:00.1"

    private static var noNesting: SimulatedHost {
        var host = SimulatedHost.standard
        host.type1Nesting = false
        return host
    }

    /// A VM with `first` attached.
    private static func attachedVM(_ f: FlowFixture) throws {
        try f.makeVM()
        try f.context.attach(first)
    }

    /// A VM with `first` attached, a PASID allocated and the first table bound to it.
    private static func boundVM(_ f: FlowFixture) throws {
        try attachedVM(f)
        f.pasid = try f.context.allocatePASID()
        try f.context.bind(f.table(FlowFixture.firstTable))
    }

    func testCreatingAVMContextRollsBackAtEveryCall() throws {
        try assertEveryCallRollsBack(ExecutorFlow(
            name: "create", mustCall: ["open", "VFIO_GET_API_VERSION", "mmap"],
            run: { try $0.makeVM() },
            check: { XCTAssertEqual(try $0.context.state.mappedMemory.count, 2) }))
    }

    func testAttachingTheFirstDeviceRollsBackAtEveryCall() throws {
        try assertEveryCallRollsBack(ExecutorFlow(
            name: "attach first device",
            mustCall: ["open", "VFIO_GROUP_GET_STATUS", "VFIO_GROUP_SET_CONTAINER", "VFIO_SET_IOMMU", "VFIO_IOMMU_GET_INFO",
                       "VFIO_IOMMU_MAP_DMA", "VFIO_GROUP_GET_DEVICE_FD"],
            prepare: { try $0.makeVM() },
            run: { try $0.context.attach(Self.first) },
            check: { f in
                XCTAssertEqual(try f.context.attachedDevices, [Self.first])
                XCTAssertEqual(f.kernel.snapshot().containers.first?.mappings.count, 2)
                XCTAssertNotNil(try f.context.nesting)
            }))
    }

    func testAttachingTheFirstDeviceWithoutNestingRollsBackAtEveryCall() throws {
        try assertEveryCallRollsBack(ExecutorFlow(
            name: "attach first device, type1v2 fallback", host: Self.noNesting,
            mustCall: ["VFIO_SET_IOMMU", "VFIO_IOMMU_MAP_DMA", "VFIO_GROUP_GET_DEVICE_FD"],
            prepare: { try $0.makeVM() },
            run: { try $0.context.attach(Self.first) },
            check: { f in
                XCTAssertTrue(try f.context.isMemoryMapped)
                XCTAssertNil(try f.context.nesting)
            }))
    }

    func testAttachingIntoASecondGroupRollsBackAtEveryCall() throws {
        try assertEveryCallRollsBack(ExecutorFlow(
            name: "attach into a second group",
            mustCall: ["VFIO_GROUP_SET_CONTAINER", "VFIO_GROUP_GET_DEVICE_FD"],
            prepare: Self.attachedVM,
            run: { try $0.context.attach(Self.second) },
            check: { XCTAssertEqual(try $0.context.attachedDevices, [Self.first, Self.second]) }))
    }

    func testAttachingASecondDeviceOfAnOpenGroupRollsBackAtEveryCall() throws {
        try assertEveryCallRollsBack(ExecutorFlow(
            name: "attach a second device of an open group",
            mustCall: ["VFIO_GROUP_GET_DEVICE_FD"],
            prepare: { f in
                f.kernel.setDriver("vfio-pci", of: Self.pairA)
                f.kernel.setDriver("vfio-pci", of: Self.pairB)
                try f.makeVM()
                try f.context.attach(Self.pairA)
            },
            run: { try $0.context.attach(Self.pairB) },
            check: { XCTAssertEqual(try $0.context.attachedDevices, [Self.pairA, Self.pairB]) }))
    }

    func testPASIDAndBindingFlowsRollBackAtEveryCall() throws {
        let flows = [
            ExecutorFlow(name: "allocate a PASID", mustCall: ["VFIO_IOMMU_PASID_REQUEST"], prepare: Self.attachedVM,
                         run: { f in f.pasid = try f.context.allocatePASID() },
                         check: { XCTAssertEqual($0.kernel.snapshot().allocatedPASIDs, [$0.pasid]) }),
            ExecutorFlow(name: "bind", mustCall: ["VFIO_IOMMU_NESTING_OP"],
                         prepare: { f in try Self.attachedVM(f); f.pasid = try f.context.allocatePASID() },
                         run: { f in try f.context.bind(f.table(FlowFixture.firstTable)) },
                         check: { f in XCTAssertEqual(f.kernel.boundTables(of: Self.first), [f.pasid: f.table(FlowFixture.firstTable)]) }),
            ExecutorFlow(name: "bind on a new PASID", mustCall: ["VFIO_IOMMU_PASID_REQUEST", "VFIO_IOMMU_NESTING_OP"],
                         prepare: Self.attachedVM,
                         run: { f in
                             let bound = try f.context.bindOnNewPASID { pasid in
                                 var table = FlowFixture.firstTable
                                 table.hostPASID = UInt64(pasid)
                                 return table
                             }
                             f.pasid = UInt32(bound.hostPASID)
                         },
                         check: { f in XCTAssertEqual(f.kernel.boundTables(of: Self.first), [f.pasid: f.table(FlowFixture.firstTable)]) }),
            ExecutorFlow(name: "rebind", mustCall: ["VFIO_IOMMU_NESTING_OP"], prepare: Self.boundVM,
                         run: { f in try f.context.rebind(from: f.table(FlowFixture.firstTable), to: f.table(FlowFixture.secondTable)) },
                         check: { f in XCTAssertEqual(f.kernel.boundTables(of: Self.first), [f.pasid: f.table(FlowFixture.secondTable)]) }),
            ExecutorFlow(name: "unbind", mustCall: ["VFIO_IOMMU_NESTING_OP"], prepare: Self.boundVM,
                         run: { f in try f.context.unbind(f.table(FlowFixture.firstTable)) },
                         check: { XCTAssertEqual($0.kernel.boundTables(of: Self.first), [:]) }),
            ExecutorFlow(name: "free a PASID", mustCall: ["VFIO_IOMMU_PASID_REQUEST"],
                         prepare: { f in try Self.attachedVM(f); f.pasid = try f.context.allocatePASID() },
                         run: { f in try f.context.freePASID(f.pasid) },
                         check: { XCTAssertEqual($0.kernel.snapshot().allocatedPASIDs, []) }),
        ]
        for flow in flows { try assertEveryCallRollsBack(flow) }
    }

    func testDetachFlowsRollBackAtEveryCall() throws {
        let flows = [
            ExecutorFlow(name: "detach a device whose group stays", prepare: { f in
                             f.kernel.setDriver("vfio-pci", of: Self.pairA)
                             f.kernel.setDriver("vfio-pci", of: Self.pairB)
                             try f.makeVM()
                             try f.context.attach(Self.pairA)
                             try f.context.attach(Self.pairB)
                         },
                         run: { try $0.context.detach(Self.pairB) },
                         check: { f in
                             XCTAssertEqual(try f.context.attachedDevices, [Self.pairA])
                             XCTAssertEqual(f.kernel.snapshot().groups[14]?.openDevices, 1)
                         }),
            ExecutorFlow(name: "detach a group while another stays", mustCall: ["VFIO_GROUP_UNSET_CONTAINER"],
                         prepare: { f in try Self.attachedVM(f); try f.context.attach(Self.second) },
                         run: { try $0.context.detach(Self.second) },
                         check: { f in
                             XCTAssertEqual(try f.context.attachedDevices, [Self.first])
                             XCTAssertEqual(f.kernel.snapshot().containers.first?.mappings.count, 2, "the IOMMU stays with the first group")
                         }),
            ExecutorFlow(name: "detach the last group", mustCall: ["VFIO_GROUP_UNSET_CONTAINER"], prepare: Self.boundVM,
                         run: { try $0.context.detach(Self.first) },
                         check: { f in
                             XCTAssertFalse(try f.context.isMemoryMapped)
                             XCTAssertNil(try f.context.container.iommuType)
                             let container = try XCTUnwrap(f.kernel.snapshot().containers.first)
                             XCTAssertEqual(container, .init(groups: [], iommuType: nil, mappings: [], pasids: []),
                                            "type1 tears the IOMMU down with the last group")
                             XCTAssertEqual(f.kernel.allocatedPASIDCount, 0)
                         }),
            ExecutorFlow(name: "close", prepare: Self.boundVM, run: { $0.vm?.close() },
                         check: { XCTAssertTrue($0.kernel.snapshot().holdsNothing) }),
        ]
        for flow in flows { try assertEveryCallRollsBack(flow) }
    }

    func testIOMMUFDFlowsRollBackAtEveryCall() throws {
        let memory = [IOMMUFD.MemoryMapping(vaddr: 0x7f00_0000_0000, iova: 0, length: 1 << 30),
                      IOMMUFD.MemoryMapping(vaddr: 0x7f80_0000_0000, iova: 1 << 32, length: 1 << 30)]
        func bound(_ f: FlowFixture) throws {
            try f.openIOMMUFD(Self.second)
            f.deviceID = try XCTUnwrap(f.iommufd).bind(try XCTUnwrap(f.cdev))
        }
        func nested(_ f: FlowFixture) throws {
            try bound(f)
            f.space = try XCTUnwrap(f.iommufd).setUpNesting(try XCTUnwrap(f.cdev), deviceID: f.deviceID, memory: memory)
        }
        func attachStage1(_ f: FlowFixture, pageTable: UInt64, replacing: UInt32?) throws -> UInt32 {
            try XCTUnwrap(f.iommufd).attachStage1(try XCTUnwrap(f.cdev), in: try XCTUnwrap(f.space), pasid: 9, pageTable: pageTable,
                                                  addressWidth: 48, replacing: replacing)
        }
        let flows = [
            ExecutorFlow(name: "iommufd: bind device", mustCall: ["VFIO_DEVICE_BIND_IOMMUFD"],
                         prepare: { try $0.openIOMMUFD(Self.second) },
                         run: { f in f.deviceID = try XCTUnwrap(f.iommufd).bind(try XCTUnwrap(f.cdev)) },
                         check: { XCTAssertEqual($0.kernel.snapshot().devices[Self.second]?.iommufdDeviceID, $0.deviceID) }),
            ExecutorFlow(name: "iommufd: set up nesting",
                         mustCall: ["IOMMU_IOAS_ALLOC", "IOMMU_HWPT_ALLOC", "VFIO_DEVICE_ATTACH_IOMMUFD_PT", "IOMMU_IOAS_MAP"],
                         prepare: bound,
                         run: { f in
                             f.space = try XCTUnwrap(f.iommufd).setUpNesting(try XCTUnwrap(f.cdev), deviceID: f.deviceID, memory: memory)
                         },
                         check: { f in
                             let space = try XCTUnwrap(f.space)
                             XCTAssertEqual(f.kernel.snapshot().devices[Self.second]?.attachedTable, space.parent)
                             let ioas = f.kernel.snapshot().iommufds.first?.first { $0.hasPrefix("\(space.ioas) ioas") }
                             XCTAssertEqual(ioas, "\(space.ioas) ioas [\"0x0+0x40000000@0x7f0000000000\", \"0x100000000+0x40000000@0x7f8000000000\"]")
                         }),
            ExecutorFlow(name: "iommufd: attach a PASID's stage-1", mustCall: ["IOMMU_HWPT_ALLOC", "VFIO_DEVICE_ATTACH_IOMMUFD_PT"],
                         prepare: nested,
                         run: { f in f.stage1 = try attachStage1(f, pageTable: 0x1000, replacing: nil) },
                         check: { f in XCTAssertEqual(f.kernel.pasidAttachments(of: Self.second), [9: try XCTUnwrap(f.stage1)]) }),
            ExecutorFlow(name: "iommufd: replace a PASID's stage-1",
                         mustCall: ["IOMMU_HWPT_ALLOC", "VFIO_DEVICE_ATTACH_IOMMUFD_PT", "IOMMU_DESTROY"],
                         prepare: { f in try nested(f); f.stage1 = try attachStage1(f, pageTable: 0x1000, replacing: nil) },
                         run: { f in f.stage1 = try attachStage1(f, pageTable: 0x2000, replacing: f.stage1) },
                         check: { f in
                             XCTAssertEqual(f.kernel.pasidAttachments(of: Self.second), [9: try XCTUnwrap(f.stage1)])
                             let stage1s = f.kernel.snapshot().iommufds.first?.filter { $0.contains("stage-1") }
                             XCTAssertEqual(stage1s?.count, 1, "the old stage-1 is destroyed")
                         }),
        ]
        for flow in flows { try assertEveryCallRollsBack(flow) }
    }
}
