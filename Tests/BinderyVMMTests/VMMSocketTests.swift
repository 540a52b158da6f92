@testable import BinderyVMM
import BinderyKernel
import BinderyReconciler
import BinderyStore
import Foundation
import Glibc
import XCTest

/// The VMM socket end to end on the simulated kernel: a token opens one VM's descriptors,
/// once, for a peer whose credentials are recorded; everything else is refused and audited.
final class VMMSocketTests: XCTestCase {
    private var directory: String!
    private let admin = AuditActor(identity: "spiffe://test/admin", role: "admin")

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "bindery-vmm-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private struct Fixture {
        let store: Store
        let reconciler: Reconciler
        let server: VMMSocketServer
        let vms: [String]
    }

    /// A running reconciler on `profile` with one VM per device in `devices`, attached, and the socket.
    private func makeFixture(_ profile: SimulatedHostProfile = .type1Nesting,
                             devices: [String] = ["0000:3b:00.0", "0000:3c:00.0"]) async throws -> Fixture {
        let store = try Store(dataDirectory: directory)
        var options = ReconcilerOptions()
        options.workers = 2
        options.resyncInterval = .seconds(3600)
        let reconciler = Reconciler(store: store, syscalls: SimulatedKernel(host: profile.host), options: options)
        try await reconciler.start()
        let admin = self.admin
        var vms: [String] = []
        for (index, device) in devices.enumerated() {
            let id = try await store.write { db in
                let vm = try VMRepository.create(VMSpec(name: "vm\(index)", memory: [MemoryRegion(guestAddress: 0, size: 1 << 30)]), actor: admin, in: db)
                try DeviceRepository.assign(device, to: vm.id, managed: false, actor: admin, in: db)
                return vm.id
            }
            vms.append(id)
            reconciler.wake(.vm(id))
            reconciler.wake(.device(device))
        }
        await reconciler.waitUntilIdle()
        let server = VMMSocketServer(configuration: .init(path: directory + "/vmm.sock"), store: store, reconciler: reconciler, log: { _ in })
        try await server.start()
        return Fixture(store: store, reconciler: reconciler, server: server, vms: vms)
    }

    private func stop(_ fixture: Fixture) async {
        fixture.server.stop()
        await fixture.reconciler.stop()
    }

    private func issue(_ fixture: Fixture, _ vmID: String, lifetime: TimeInterval = 60) async throws -> String {
        let admin = self.admin
        return try await fixture.store.write { db in try AttachmentRepository.issue(vmID: vmID, lifetime: lifetime, actor: admin, in: db) }.token
    }

    private func holder(_ fixture: Fixture, _ vmID: String) async throws -> AttachmentRepository.Holder? {
        try await fixture.store.read { db in try AttachmentRepository.holder(of: vmID, in: db) }
    }

    /// Waits (polling the store) until `condition` holds, failing after 10 s.
    private func waitFor(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(10)
        while try await !condition() {
            guard Date() < deadline else { return XCTFail("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    private func refusal(_ body: () throws(VMMAttachment.Failure) -> VMMAttachment) -> String? {
        do {
            let attachment = try body()
            attachment.close()
            return nil
        } catch {
            if case let .refused(reason) = error { return reason }
            return "\(error)"
        }
    }

    private func audit(_ fixture: Fixture, action: AuditAction) async throws -> [AuditEvent] {
        var query = AuditChain.Query()
        query.action = action.rawValue
        let selection = query
        return try await fixture.store.read { db in try AuditChain.events(selection, in: db) }
    }

    func testAVMMReceivesTheContainerAndItsDevicesWithAManifestAndHoldsTheVMUntilItCloses() async throws {
        let fixture = try await makeFixture()
        let vm = fixture.vms[0]
        let token = try await issue(fixture, vm)
        let attachment = try VMMAttachment.attach(socket: fixture.server.path, vm: vm, token: token)
        XCTAssertEqual(attachment.manifest.vm, vm)
        XCTAssertEqual(attachment.manifest.path, "vfio-type1")
        XCTAssertEqual(attachment.manifest.descriptors.map(\.name), ["vfio-container", "vfio-device.0000-3b-00.0"])
        XCTAssertEqual(attachment.manifest.listenFDNames, "vfio-container:vfio-device.0000-3b-00.0")
        XCTAssertEqual(attachment.manifest.descriptors[1].device, "0000:3b:00.0")
        XCTAssertEqual(attachment.manifest.descriptors[1].group, 10)
        XCTAssertNotNil(attachment.manifest.descriptors[1].regions)
        XCTAssertEqual(attachment.manifest.memory.map(\.size), [1 << 30])
        XCTAssertEqual(attachment.descriptors.count, 2)
        // The simulated kernel's objects leave the process as named memory files.
        for (fd, entry) in zip(attachment.descriptors, attachment.manifest.descriptors) {
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
            XCTAssertTrue(link.contains("bindery-simulated \(entry.name)"), link)
            XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC, "received close-on-exec")
        }
        let held = try await holder(fixture, vm)
        XCTAssertEqual(held?.pid, getpid())
        XCTAssertEqual(held?.uid, getuid())
        XCTAssertEqual(held?.issuer, admin.identity)
        let attaches = try await audit(fixture, action: .vmmAttach)
        XCTAssertEqual(attaches.map(\.record.outcome), [.success])
        XCTAssertEqual(attaches.first?.record.actor.identity, "vmm:pid=\(getpid()),uid=\(getuid())")

        attachment.close()
        try await waitFor("the detach") { try await holder(fixture, vm) == nil }
        let detaches = try await audit(fixture, action: .vmmDetach)
        XCTAssertEqual(detaches.count, 1)
        XCTAssertTrue(detaches.first?.record.after?.contains("its connection closed") ?? false)
        let valid = try await fixture.store.read { db in try AuditChain.verify(in: db).isValid }
        XCTAssertTrue(valid)
        await stop(fixture)
    }

    func testATokenOpensOneVMOnceBeforeItExpiresAndEveryRefusalIsAudited() async throws {
        let fixture = try await makeFixture()
        let (a, b) = (fixture.vms[0], fixture.vms[1])
        let path = fixture.server.path
        XCTAssertEqual(refusal { () throws(VMMAttachment.Failure) in try VMMAttachment.attach(socket: path, vm: a, token: String(repeating: "0", count: 64)) },
                       "unknown attach token")
        let forB = try await issue(fixture, b)
        XCTAssertEqual(refusal { () throws(VMMAttachment.Failure) in try VMMAttachment.attach(socket: path, vm: a, token: forB) },
                       "the attach token is for another VM")
        let expired = try await issue(fixture, a, lifetime: -1)
        XCTAssertEqual(refusal { () throws(VMMAttachment.Failure) in try VMMAttachment.attach(socket: path, vm: a, token: expired) },
                       "the attach token expired")
        let once = try await issue(fixture, a)
        let first = try VMMAttachment.attach(socket: path, vm: a, token: once)
        XCTAssertEqual(refusal { () throws(VMMAttachment.Failure) in try VMMAttachment.attach(socket: path, vm: a, token: once) },
                       "the attach token was already used")
        let second = try await issue(fixture, a)
        XCTAssertEqual(refusal { () throws(VMMAttachment.Failure) in try VMMAttachment.attach(socket: path, vm: a, token: second) },
                       "another VMM (pid \(getpid())) holds this VM's devices")
        // B's token still opens B: refusals spent nothing.
        let other = try VMMAttachment.attach(socket: path, vm: b, token: forB)
        XCTAssertEqual(other.manifest.descriptors.map(\.name), ["vfio-container", "vfio-device.0000-3c-00.0"])
        let attaches = try await audit(fixture, action: .vmmAttach)
        XCTAssertEqual(attaches.filter { $0.record.outcome == .denied }.count, 5)
        XCTAssertEqual(attaches.filter { $0.record.outcome == .success }.count, 2)
        first.close()
        other.close()
        await stop(fixture)
    }

    func testARequestThatIsNotOneSmallJSONMessageIsRefused() async throws {
        let fixture = try await makeFixture(devices: ["0000:3b:00.0"])
        let connection = try UnixSeqpacket.connect(to: fixture.server.path)
        try connection.send(Array(repeating: UInt8(ascii: "x"), count: 4000))
        let answer = try connection.receive(capacity: 4096)
        let refusal = try JSONDecoder().decode(AttachRefusal.self, from: Data(answer?.bytes ?? []))
        XCTAssertTrue(refusal.error.hasPrefix("expected one message"), refusal.error)
        connection.close()
        await stop(fixture)
    }

    func testTheSocketIsOnlyForTheDaemonsUser() async throws {
        let fixture = try await makeFixture(devices: ["0000:3b:00.0"])
        var info = stat()
        XCTAssertEqual(stat(fixture.server.path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        await stop(fixture)
    }

    func testOnIOMMUFDTheVMMGetsTheIOMMUFDAndBoundCdevsWithTheirObjectIDs() async throws {
        let fixture = try await makeFixture(.iommufd, devices: ["0000:3b:00.0"])
        let vm = fixture.vms[0]
        let attachment = try VMMAttachment.attach(socket: fixture.server.path, vm: vm, token: try await issue(fixture, vm))
        XCTAssertEqual(attachment.manifest.path, "iommufd")
        XCTAssertEqual(attachment.manifest.descriptors.map(\.kind), ["iommufd", "vfio-cdev"])
        XCTAssertNotNil(attachment.manifest.descriptors[1].iommufdDeviceId)
        XCTAssertNotNil(attachment.manifest.iommufd?.ioas)
        XCTAssertNotNil(attachment.manifest.iommufd?.hwpt)
        attachment.close()
        await stop(fixture)
    }

    func testAVMWithoutItsIOMMUContextHandsNothingOverAndKeepsTheToken() async throws {
        let fixture = try await makeFixture(devices: [])
        let admin = self.admin
        let vm = try await fixture.store.write { db in
            try VMRepository.create(VMSpec(name: "idle", memory: []), actor: admin, in: db).id
        }
        let token = try await issue(fixture, vm)
        let reason = refusal { () throws(VMMAttachment.Failure) in try VMMAttachment.attach(socket: fixture.server.path, vm: vm, token: token) }
        XCTAssertTrue(reason?.contains("cannot be handed over now") ?? false, reason ?? "")
        let unspent = try await fixture.store.read { db in try AttachmentRepository.check(token: token, vmID: vm, in: db) }
        XCTAssertNil(unspent, "the token is still good")
        await stop(fixture)
    }
}
