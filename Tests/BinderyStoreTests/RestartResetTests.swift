@testable import BinderyStore
import GRDB
import XCTest

final class RestartResetTests: XCTestCase {
    /// After a restart, Ready VMs go back to Pending to be rebuilt, except those that held
    /// nothing and depend on no policy: awaiting their first device, anonymous memory only. A
    /// VM awaiting its first device with a backing file goes through the (maybe changed) memory
    /// policy again, and a row whose conditions are not JSON does not stop the daemon starting.
    func testReadyVMsGoBackToPendingExceptIdleOnesWithAnonymousMemory() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        let actor = AuditActor(identity: "spiffe://test/admin", role: "admin", remoteAddress: "127.0.0.1")
        let phases = try await store.write { db -> [String: Phase] in
            func vm(_ name: String, backing: String? = nil, reason: ConditionReason) throws -> String {
                let id = try VMRepository.create(VMSpec(name: name, memory: [MemoryRegion(guestAddress: 0, size: 1 << 21, backingPath: backing)]),
                                                 actor: actor, in: db).id
                try VMRepository.updateStatus(id, phase: .ready, conditions: [Condition(type: .ready, status: true, reason: reason, message: "")],
                                              observedGeneration: 1, in: db)
                return id
            }
            let idle = try vm("idle", reason: .awaitingFirstDevice)
            let backed = try vm("backed", backing: "guest.mem", reason: .awaitingFirstDevice)
            let open = try vm("open", reason: .contextOpen)
            let broken = try vm("broken", reason: .awaitingFirstDevice)
            try db.execute(sql: "UPDATE vms SET conditions = 'not json' WHERE id = ?", arguments: [broken])
            try VMRepository.resetReadyToPending(in: db)
            return try Dictionary(uniqueKeysWithValues: [("idle", idle), ("backed", backed), ("open", open), ("broken", broken)].map { name, id in
                (name, try VMRepository.fetch(id: id, in: db)!.phase)
            })
        }
        XCTAssertEqual(phases, ["idle": .ready, "backed": .pending, "open": .pending, "broken": .pending])
    }
}
