@testable import BinderyStore
import GRDB
import XCTest

final class VMViewsTests: XCTestCase {
    /// The one-statement views answer what the repository's separate reads answer: each VM's
    /// regions in order, its holder, pages that never split a VM's rows, and no VM being deleted.
    func testViewsMatchTheRecordsRegionsAndHoldersReadOneByOne() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        let actor = AuditActor(identity: "spiffe://test/admin", role: "admin", remoteAddress: "127.0.0.1")
        let ids = try await store.write { db -> [String] in
            let ids = try (0..<12).map { index -> String in
                // 0, 1, 2 or 3 regions, one with a backing file; labels on some.
                let memory = (0..<(index % 4)).map { position in
                    MemoryRegion(guestAddress: UInt64(position) << 32, size: 1 << 21,
                                 backingPath: position == 1 ? "guest-\(index).mem" : nil, backingOffset: UInt64(position) * 4096)
                }
                let spec = VMSpec(name: "vm\(index)", labels: index % 3 == 0 ? ["tier": "t\(index)"] : [:], memory: memory)
                return try VMRepository.create(spec, actor: actor, in: db).id
            }
            for (pid, id) in ids.enumerated() where pid % 5 == 0 {
                try db.execute(sql: "INSERT INTO vmm_holders (vm_id, pid, uid, gid, issuer, since) VALUES (?, ?, 1000, 1000, 'spiffe://test/op', '2026-12-04T00:00:00Z')",
                               arguments: [id, 4000 + pid])
            }
            try VMRepository.requestDeletion(ids[7], actor: actor, in: db)
            return ids
        }
        let expected = try await store.read { db in
            try ids.sorted().filter { !(try VMRepository.isDeletionRequested($0, in: db)) }.map { id in
                (try VMRepository.fetch(id: id, in: db)!, try AttachmentRepository.holder(of: id, in: db))
            }
        }
        XCTAssertEqual(expected.count, 11)
        XCTAssertEqual(Set(expected.map(\.0.spec.memory.count)), [0, 1, 2, 3])
        XCTAssertEqual(expected.filter { $0.1 != nil }.count, 3)

        for limit in [1, 2, 5, 100] {
            var paged: [VMViews.Item] = []
            var after: String?
            while true {
                let cursor = after
                let page = try await store.read { db in try VMViews.page(after: cursor, limit: limit, in: db) }
                XCTAssertLessThanOrEqual(page.count, limit)
                paged += page
                guard page.count == limit, let last = page.last else { break }
                after = last.record.id
            }
            XCTAssertEqual(paged.map(\.record), expected.map(\.0), "limit \(limit)")
            XCTAssertEqual(paged.map(\.holder), expected.map(\.1), "limit \(limit)")
        }
        for (record, holder) in expected {
            let item = try await store.read { db in try VMViews.visible(record.id, in: db) }
            XCTAssertEqual(item?.record, record)
            XCTAssertEqual(item?.holder, holder)
        }
        let deleting = try await store.read { db in try VMViews.visible(ids[7], in: db) }
        XCTAssertNil(deleting, "a VM being deleted is not visible")
        let missing = try await store.read { db in try VMViews.visible("vm-00000000000000000000000000000000", in: db) }
        XCTAssertNil(missing)
    }
}
