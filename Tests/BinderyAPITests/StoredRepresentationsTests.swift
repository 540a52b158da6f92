@testable import BinderyAPI
@testable import BinderyHTTP
import BinderyStore
import Foundation
import XCTest

/// The representations kept with each VM and binding (`StoredRepresentations`) are never
/// served stale, whichever write changed what they show; a read of one that is not rendered
/// (NULL, or another build's) answers from the columns and has the writer render it.
final class StoredRepresentationsTests: XCTestCase {
    private var fixture: TransportFixture!
    private var store: Store { fixture.store }
    private let actor = AuditActor(identity: "spiffe://test/admin")

    override func setUp() async throws {
        fixture = try await TransportFixture(directWrites: true)
    }

    override func tearDown() async throws {
        await fixture.stop()
    }

    /// The VMs and bindings clients may see whose stored representation is not what their
    /// columns render now: `stale` ones (tagged, yet different: never allowed) and `unrendered` ones.
    private func representations() async throws -> (stale: [String], unrendered: [String], visible: Int) {
        let renderer = try XCTUnwrap(store.renderer)
        return try await store.read { db in
            var stale: [String] = [], unrendered: [String] = [], visible = 0
            func judge(_ id: String, _ stored: StoredRepresentations.Lookup, _ current: StoredRepresentations.Lookup) {
                visible += 1
                if stored == .unrendered { unrendered.append(id) } else if stored != current { stale.append(id) }
            }
            for id in try String.fetchAll(db, sql: "SELECT id FROM vms WHERE deletion_requested_at IS NULL") {
                let item = try XCTUnwrap(try VMViews.visible(id, in: db))
                judge(id, try StoredRepresentations.vm(id, tag: renderer.tag, in: db),
                      try renderer.vm(item).map { .found(json: $0, resourceVersion: item.record.meta.resourceVersion) } ?? .columnsOnly)
            }
            for id in try String.fetchAll(db, sql: "SELECT id FROM bindings WHERE deletion_requested_at IS NULL") {
                let record = try XCTUnwrap(try BindingRepository.fetch(id, in: db))
                judge(id, try StoredRepresentations.binding(id, tag: renderer.tag, in: db),
                      try renderer.binding(record).map { .found(json: $0, resourceVersion: record.meta.resourceVersion) } ?? .columnsOnly)
            }
            return (stale, unrendered, visible)
        }
    }

    /// After `step`: no stored representation is stale; once each VM and binding is read on
    /// the loop, all of them are stored, current (waited for: the writer renders them in the
    /// background). Returns how many there are.
    @discardableResult
    private func assertCurrent(_ step: String, file: StaticString = #filePath, line: UInt = #line) async throws -> Int {
        // Settled first: the two reads compared below must see the same commit.
        await fixture.reconciler.waitUntilIdle()
        let before = try await representations()
        XCTAssertEqual(before.stale, [], "after \(step): stale representations served", file: file, line: line)
        // Read twice: a resource is rendered at its second asking (`Store.requestRendering`).
        for id in before.unrendered {
            let target = id.hasPrefix("vm-") ? "/v1/vms/\(id)" : "/v1/bindings/\(id)"
            try await assertLoopAnswerEqualsGenerated(target, file: file, line: line)
            try await assertLoopAnswerEqualsGenerated(target, file: file, line: line)
        }
        let deadline = Date().addingTimeInterval(10)
        var after = try await representations()
        while !after.unrendered.isEmpty, Date() < deadline {
            try await Task.sleep(for: .milliseconds(5))
            after = try await representations()
        }
        XCTAssertEqual(after.stale, [], "after \(step): stale representations rendered", file: file, line: line)
        XCTAssertEqual(after.unrendered, [], "after \(step): read, yet not rendered", file: file, line: line)
        return after.visible
    }

    /// The loop's answer to GET `target` (stored or from the columns) equals the generated path's.
    private func assertLoopAnswerEqualsGenerated(_ target: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let slow = await fixture.transport.respond(to: fixture.request("GET", target))
        let fast = try XCTUnwrap(fixture.transport.respondImmediately(to: fixture.request("GET", target)), target, file: file, line: line)
        XCTAssertEqual(fast.status, slow.status, target, file: file, line: line)
        XCTAssertEqual(fast.headers.map { "\($0.name): \($0.value)" }, slow.headers.map { "\($0.name): \($0.value)" }, target, file: file, line: line)
        XCTAssertEqual(String(decoding: fast.body, as: UTF8.self), String(decoding: slow.body, as: UTF8.self), target, file: file, line: line)
    }

    func testEveryKindOfWriteLeavesTheRepresentationsCurrent() async throws {
        let vm = try await fixture.created("/v1/vms", #"{"name":"one","labels":{"b":"2","a":"é\"/"},"memory":[{"guestAddress":"0x0","size":1073741824}]}"#)
        let other = try await fixture.created("/v1/vms", #"{"name":"two","memory":[{"guestAddress":"0x0","size":2097152},{"guestAddress":"0x200000","size":4096}]}"#)
        let created = try await assertCurrent("two creates")
        XCTAssertEqual(created, 2)
        let assigned = await fixture.transport.respond(to: fixture.request("PUT", "/v1/vms/\(vm)/devices/0000:3b:00.0", body: #"{"managed":true}"#))
        XCTAssertEqual(assigned.status, 202, String(decoding: assigned.body, as: UTF8.self))
        let binding = try await fixture.created("/v1/bindings", #"{"vm":"\#(vm)","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":5,"format":"intel-vtd","version":1,"pageTable":{"address":"0x1000","addressWidth":48},"vtd":{"sre":true}}"#)
        await fixture.reconciler.waitUntilIdle()
        let settled = try await assertCurrent("the reconciler's status writes")
        XCTAssertEqual(settled, 3)
        let bound = String(decoding: try XCTUnwrap(fixture.transport.respondImmediately(to: fixture.request("GET", "/v1/bindings/\(binding)"))).body, as: UTF8.self)
        XCTAssertTrue(bound.contains(#""phase":"Bound""#), bound)

        let patched = await fixture.transport.respond(to: fixture.request("PATCH", "/v1/vms/\(vm)", body: #"{"labels":{"c":"3"}}"#))
        XCTAssertEqual(patched.status, 200, String(decoding: patched.body, as: UTF8.self))
        try await assertCurrent("a label change")
        try await store.write { [actor] db in
            _ = try BindingRepository.replacePageTable(binding, address: 0x4000, addressWidth: 57, actor: actor, in: db)
        }
        await fixture.reconciler.waitUntilIdle()
        try await assertCurrent("a page table replaced")

        // A VMM attaches, then goes: the holder is in the VM's representation.
        let issued = try await store.write { [actor] db in try AttachmentRepository.issue(vmID: other, lifetime: 60, actor: actor, in: db) }
        try await store.write { db in
            _ = try AttachmentRepository.redeem(token: issued.token, vmID: other, pid: getpid(), uid: getuid(), gid: getgid(), isAlive: { _ in true }, in: db)
        }
        try await assertCurrent("a VMM attached")
        let held = String(decoding: try XCTUnwrap(fixture.transport.respondImmediately(to: fixture.request("GET", "/v1/vms/\(other)"))).body, as: UTF8.self)
        XCTAssertTrue(held.contains(#""vmm":{"issuer":"#), held)
        try await store.write { db in try AttachmentRepository.release(vmID: other, pid: getpid(), reason: "test", in: db) }
        try await assertCurrent("the VMM released it")

        // Writes no repository makes: the triggers still mark what they change.
        try await store.write { db in
            try db.execute(sql: "UPDATE vms SET name = 'renamed' WHERE id = ?", arguments: [other])
            try db.execute(sql: "UPDATE vm_memory_regions SET size = 8192 WHERE vm_id = ? AND position = 1", arguments: [other])
            try db.execute(sql: "UPDATE bindings SET guest_pasid = 9 WHERE id = ?", arguments: [binding])
        }
        try await assertCurrent("raw updates of a VM, its region and a binding")
        let renamed = String(decoding: try XCTUnwrap(fixture.transport.respondImmediately(to: fixture.request("GET", "/v1/vms/\(other)"))).body, as: UTF8.self)
        XCTAssertTrue(renamed.contains(#""name":"renamed""#) && renamed.contains(#""size":8192"#), renamed)
        try await store.write { db in try db.execute(sql: "DELETE FROM vm_memory_regions WHERE vm_id = ? AND position = 1", arguments: [other]) }
        try await assertCurrent("a region deleted")

        let deleted = await fixture.transport.respond(to: fixture.request("DELETE", "/v1/bindings/\(binding)"))
        XCTAssertEqual(deleted.status, 202, String(decoding: deleted.body, as: UTF8.self))
        let remaining = try await assertCurrent("a binding's deletion asked for")
        XCTAssertEqual(remaining, 2)
        XCTAssertEqual(fixture.transport.respondImmediately(to: fixture.request("GET", "/v1/bindings/\(binding)"))?.status, 404)
        for target in ["/v1/vms/\(vm)", "/v1/vms/\(other)", "/v1/vms", "/v1/vms?limit=1", "/v1/bindings", "/v1/bindings/\(binding)", "/v1/vms/vm-missing"] {
            try await assertLoopAnswerEqualsGenerated(target)
        }
    }

    func testRowsOfAnotherBuildAreReadFromTheColumnsUntilRendered() async throws {
        var vms: [String] = []
        for index in 0..<5 {
            vms.append(try await fixture.created("/v1/vms", #"{"name":"vm-\#(index)","memory":[{"guestAddress":"0x0","size":1073741824}]}"#))
        }
        await fixture.reconciler.waitUntilIdle()
        let renderer = try XCTUnwrap(store.renderer)
        let read = try await assertCurrent("five creates, each read once")
        XCTAssertEqual(read, 5)
        // A page with nothing to render asks for nothing, and rendering goes on after it.
        try await assertLoopAnswerEqualsGenerated("/v1/vms")
        // Rows as migration 0009 leaves them (NULL), and as another build tagged them.
        let otherBuild = APIRepresentations(identity: "bindery 0.0.1 (commit other)")
        XCTAssertNotEqual(otherBuild.tag, renderer.tag)
        try await store.write { [vms] db in
            try db.execute(sql: "UPDATE vms SET representation = NULL WHERE id IN (?, ?)", arguments: [vms[0], vms[1]])
            try db.execute(sql: "UPDATE vms SET representation = ? WHERE id = ?",
                           arguments: [Data(otherBuild.tag + Array(#"{"stale":true}"#.utf8)), vms[2]])
            XCTAssertEqual(try StoredRepresentations.vm(vms[2], tag: renderer.tag, in: db), .unrendered)
            let untouched = try XCTUnwrap(try VMViews.visible(vms[3], in: db))
            XCTAssertEqual(try StoredRepresentations.vm(vms[3], tag: renderer.tag, in: db),
                           .found(json: try XCTUnwrap(try renderer.vm(untouched)), resourceVersion: untouched.record.meta.resourceVersion))
        }
        for target in ["/v1/vms/\(vms[0])", "/v1/vms/\(vms[2])", "/v1/vms", "/v1/vms?limit=2", "/v1/vms?limit=2&after=\(vms[1])"] {
            try await assertLoopAnswerEqualsGenerated(target)
        }
        let listed = String(decoding: try XCTUnwrap(fixture.transport.respondImmediately(to: fixture.request("GET", "/v1/vms"))).body, as: UTF8.self)
        XCTAssertFalse(listed.contains("stale"), listed)

        // The reads above asked for them: the writer renders them.
        let current = try await assertCurrent("reading what another build stored")
        XCTAssertEqual(current, 5)
        let page = try await store.read { db in
            try StoredRepresentations.vmPage(after: nil, limit: 10, tag: renderer.tag, in: db) { _ in }
        }
        XCTAssertEqual(page.unrendered, [])
        XCTAssertNil(page.next)
    }

    func testAResourceWhoseJSONWouldChangeWithTimeIsNeverKept() async throws {
        let vm = try await fixture.created("/v1/vms", #"{"name":"timeless","memory":[{"guestAddress":"0x0","size":1073741824}]}"#)
        // A time that does not parse: the generated types write the time of the read instead.
        try await store.write { db in try db.execute(sql: "UPDATE vms SET created_at = 'not a time' WHERE id = ?", arguments: [vm]) }
        await fixture.reconciler.waitUntilIdle()
        let renderer = try XCTUnwrap(store.renderer)
        for _ in 0..<2 {
            XCTAssertEqual(fixture.transport.respondImmediately(to: fixture.request("GET", "/v1/vms/\(vm)"))?.status, 200)
        }
        let deadline = Date().addingTimeInterval(10)
        var stored = try await store.read { db in try StoredRepresentations.vm(vm, tag: renderer.tag, in: db) }
        while stored == .unrendered, Date() < deadline {
            try await Task.sleep(for: .milliseconds(5))
            stored = try await store.read { db in try StoredRepresentations.vm(vm, tag: renderer.tag, in: db) }
        }
        XCTAssertEqual(stored, .columnsOnly, "marked as read from the columns, not kept")
        // Mended, it is kept again once read.
        try await store.write { db in try db.execute(sql: "UPDATE vms SET created_at = updated_at WHERE id = ?", arguments: [vm]) }
        let current = try await assertCurrent("a time mended")
        XCTAssertEqual(current, 1)
    }
}
