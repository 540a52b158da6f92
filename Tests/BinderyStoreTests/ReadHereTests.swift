@testable import BinderyStore
import GRDB
import XCTest

/// `Store.readHere` keeps a slot's snapshot between reads while the writer commits nothing, so
/// a caller always reads what it heard back from, and lets it go when the loop waits.
final class ReadHereTests: XCTestCase {
    private let actor = AuditActor(identity: "spiffe://test/admin")

    private func names(_ store: Store, slot: Int = 0) throws -> [String] {
        try store.readHere(slot: slot) { db in try String.fetchAll(db, sql: "SELECT name FROM vms ORDER BY name") }
    }

    func testTheSnapshotIsKeptUntilTheWriterCommitsOrTheLoopWaits() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        XCTAssertEqual(try names(store), [])
        // A write through the writer: read at once, as its caller heard back.
        _ = try await store.write { [actor] db in try VMRepository.create(VMSpec(name: "a"), actor: actor, in: db) }
        XCTAssertEqual(try names(store), ["a"])
        XCTAssertEqual(try names(store, slot: 1), ["a"], "another slot opens its own snapshot")

        // A write that does not go through the writer (another process, say): the kept snapshot
        // does not see it...
        try await store.pool.writeWithoutTransaction { db in
            try db.execute(sql: "INSERT INTO vms (id, name, created_at, updated_at) VALUES ('vm-b', 'b', '2026-12-05T00:00:00Z', '2026-12-05T00:00:00Z')")
        }
        XCTAssertEqual(try names(store), ["a"], "the snapshot is kept while the writer commits nothing")
        // ...until the loop waits and lets it go.
        store.endHeldRead(slot: 0)
        XCTAssertEqual(try names(store), ["a", "b"])
        XCTAssertEqual(try names(store, slot: 1), ["a"])
        store.endHeldRead(slot: 1)
        store.endHeldRead(slot: 7)  // never read: nothing to end
        XCTAssertEqual(try names(store, slot: 1), ["a", "b"])

        // While a slot keeps a snapshot, the WAL still checkpoints once it is let go.
        for index in 0..<50 {
            _ = try await store.write { [actor] db in try VMRepository.create(VMSpec(name: "c\(index)"), actor: actor, in: db) }
            XCTAssertEqual(try names(store).count, 3 + index, "each commit is read by the next read")
        }
        store.endHeldRead(slot: 0)
        store.endHeldRead(slot: 1)
        let checkpoint = try await store.pool.writeWithoutTransaction { db in
            try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")!
        }
        XCTAssertEqual(checkpoint[0] as Int, 0, "not blocked by a kept snapshot")
    }

    func testAReadThatFailsLeavesTheSlotUsable() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        XCTAssertThrowsError(try store.readHere(slot: 0) { db in try db.execute(sql: "SELECT * FROM no_such_table") })
        _ = try await store.write { [actor] db in try VMRepository.create(VMSpec(name: "a"), actor: actor, in: db) }
        XCTAssertEqual(try names(store), ["a"])
    }
}

/// `Store.requestRendering` renders a resource at its second asking, so a single pass over
/// every resource costs no writes.
final class RenderRequestsTests: XCTestCase {
    func testAResourceIsRenderedAtItsSecondAsking() {
        var requests = Store.RenderRequests()
        XCTAssertFalse(requests.isAskedAgain("vm a"), "asked once: remembered, not rendered")
        XCTAssertFalse(requests.isAskedAgain("vm b"))
        XCTAssertTrue(requests.isAskedAgain("vm a"), "asked again: rendered")
        XCTAssertFalse(requests.isAskedAgain("vm a"), "forgotten once rendered: a later change needs two asks again")
        XCTAssertFalse(requests.isAskedAgain("binding a"), "kinds are apart")
        for index in 0..<Store.askedOnceLimit { _ = requests.isAskedAgain("vm \(index)") }
        XCTAssertLessThanOrEqual(requests.askedOnce.count, Store.askedOnceLimit, "bounded")
        XCTAssertFalse(requests.isAskedAgain("vm b"), "forgotten when the memory filled")
    }
}
