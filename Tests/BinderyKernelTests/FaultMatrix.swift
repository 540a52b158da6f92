@testable import BinderyKernel
import XCTest

/// One executor flow, run from a prepared starting state.
struct ExecutorFlow {
    /// What the flow is, in failure messages.
    var name: String
    /// The synthetic host it runs on.
    var host: SimulatedHost = .standard
    /// Calls the fault-free run must make (a check that recording sees the flow's steps).
    var mustCall: [String] = []
    /// Brings a fresh fixture to the state the flow starts from.
    var prepare: (FlowFixture) throws -> Void = { _ in }
    /// The flow.
    var run: (FlowFixture) throws -> Void
    /// What must hold once the flow succeeded.
    var check: (FlowFixture) throws -> Void = { _ in }
}

/// A simulated kernel and what the flows hold in it.
final class FlowFixture {
    static let memory = [GuestMemoryRegion(guestAddress: 0, size: 1 << 30), GuestMemoryRegion(guestAddress: 1 << 32, size: 1 << 30)]
    static let firstTable = GuestPageTableBind(addressWidth: 48, pageTable: 0x1f00_0000, hostPASID: 0, guestPASID: 3)
    static let secondTable = GuestPageTableBind(addressWidth: 57, pageTable: 0x2f00_0000, hostPASID: 0, guestPASID: 3)

    let kernel: SimulatedKernel
    var vm: VMContext?
    var pasid: UInt32 = 0
    var iommufd: IOMMUFD?
    var cdev: VFIODevice?
    var deviceID: UInt32 = 0
    var space: IOMMUFD.NestingSpace?
    var stage1: UInt32?

    init(host: SimulatedHost) { kernel = SimulatedKernel(host: host) }

    /// The VM context (the flow's precondition made it).
    var context: VMContext { get throws { try XCTUnwrap(vm) } }

    /// Creates the VM context.
    func makeVM() throws {
        vm = try VMContext(syscalls: kernel, inventory: SysfsInventory(syscalls: kernel), memory: Self.memory)
    }

    /// `table` on the fixture's host PASID.
    func table(_ table: GuestPageTableBind) -> GuestPageTableBind {
        var bind = table
        bind.hostPASID = UInt64(pasid)
        return bind
    }

    /// Opens iommufd and the cdev of `address`.
    func openIOMMUFD(_ address: String) throws {
        iommufd = try IOMMUFD(syscalls: kernel)
        let path = try XCTUnwrap(SysfsInventory(syscalls: kernel).vfioCdevPath(of: address))
        cdev = try VFIODevice(cdev: path, address: address, syscalls: kernel)
    }

    /// Releases everything the flows hold, as a daemon's shutdown does.
    func tearDown() {
        vm?.close()
        vm = nil
        cdev?.close()
        iommufd?.close()
    }
}

/// Runs `flow` once per call it makes, failing exactly that call: the flow must throw a typed
/// error naming the call and errno, leave the kernel and the executor as they were, succeed
/// once the fault is lifted, and leak nothing after teardown.
func assertEveryCallRollsBack(_ flow: ExecutorFlow, errno: Errno = .EAGAIN, file: StaticString = #filePath, line: UInt = #line) throws {
    let calls = try recordCalls(flow, file: file, line: line)
    for (index, call) in calls.enumerated() {
        let occurrence = calls[..<index].filter { $0 == call }.count
        let label = "\(flow.name): \(call) #\(occurrence + 1) failing with \(errno.name)"
        let fixture = FlowFixture(host: flow.host)
        try flow.prepare(fixture)
        let kernelBefore = fixture.kernel.snapshot()
        let contextBefore = fixture.vm?.state

        fixture.kernel.faults.add(.init(call: call, errno: errno, trigger: .script(Array(repeating: nil, count: occurrence) + [errno])))
        XCTAssertThrowsError(try flow.run(fixture), label, file: file, line: line) { error in
            assertNames(error, call: call, errno: errno, label, file: file, line: line)
        }
        XCTAssertEqual(fixture.kernel.faults.injected, [call: 1], label, file: file, line: line)
        XCTAssertEqual(fixture.kernel.snapshot(), kernelBefore, "kernel state changed: \(label)", file: file, line: line)
        XCTAssertEqual(fixture.vm?.state, contextBefore, "executor state changed: \(label)", file: file, line: line)

        fixture.kernel.faults.clear()
        XCTAssertNoThrow(try flow.run(fixture), "retry: \(label)", file: file, line: line)
        XCTAssertNoThrow(try flow.check(fixture), "after retry: \(label)", file: file, line: line)
        fixture.tearDown()
        let leaked = fixture.kernel.snapshot()
        XCTAssertTrue(leaked.holdsNothing, "leaked after \(label): \(leaked)", file: file, line: line)
    }
}

/// The calls a fault-free run of `flow` makes, in order (each one a fault plan can fail).
private func recordCalls(_ flow: ExecutorFlow, file: StaticString, line: UInt) throws -> [String] {
    let fixture = FlowFixture(host: flow.host)
    try flow.prepare(fixture)
    fixture.kernel.faults.startRecording()
    try flow.run(fixture)
    let calls = fixture.kernel.faults.stopRecording()
    try flow.check(fixture)
    for call in flow.mustCall {
        XCTAssertTrue(calls.contains(call), "\(flow.name) made no \(call): \(calls)", file: file, line: line)
    }
    fixture.tearDown()
    XCTAssertTrue(fixture.kernel.snapshot().holdsNothing, "\(flow.name) leaks without faults", file: file, line: line)
    return calls
}

/// Asserts `error` is the injected failure itself — a `KernelError` naming `call` and `errno`,
/// not an incomplete rollback.
func assertNames(_ error: any Error, call: String, errno: Errno, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let error = error as? KernelError else { return XCTFail("untyped \(error): \(label)", file: file, line: line) }
    if case .rollbackIncomplete = error { return XCTFail("rollback incomplete: \(error): \(label)", file: file, line: line) }
    XCTAssertEqual(error.errno, errno, "\(error): \(label)", file: file, line: line)
    let parts = call.split(separator: " ", maxSplits: 1).map(String.init)
    if parts.count == 2 {
        // A sysfs access: the error names the operation and the file's path.
        XCTAssertEqual(error.call, parts[0], "\(error): \(label)", file: file, line: line)
        guard case let .file(_, path, _) = error else { return XCTFail("not a file error: \(error): \(label)", file: file, line: line) }
        XCTAssertTrue(path.hasSuffix("/" + parts[1]), "\(error): \(label)", file: file, line: line)
    } else {
        XCTAssertEqual(error.call, call, "\(error): \(label)", file: file, line: line)
        XCTAssertTrue("\(error)".contains(call) && "\(error)".contains(errno.name), "\(error): \(label)", file: file, line: line)
    }
}
