@testable import BinderyStore
import GRDB
import XCTest

final class AuditChainTests: XCTestCase {
    private func record(_ n: Int) -> AuditRecord {
        AuditRecord(actor: AuditActor(identity: "spiffe://test/\(n)", role: "admin", remoteAddress: "127.0.0.1"),
                    requestID: "req-\(n)", action: "vm.create", resourceType: "vm", resourceID: "vm-\(n)",
                    outcome: .success, httpStatus: 201, before: nil, after: "{\"n\":\(n)}")
    }

    private func makeStoreWithEvents(_ count: Int) async throws -> Store {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        for n in 1...count {
            let record = record(n)
            _ = try await store.write { db in try AuditChain.append(record, in: db) }
        }
        return store
    }

    func testAppendedEventsChainAndVerify() async throws {
        let store = try await makeStoreWithEvents(5)
        let (verification, first, second) = try await store.read { db in
            (try AuditChain.verify(in: db), try AuditChain.event(seq: 1, in: db)!, try AuditChain.event(seq: 2, in: db)!)
        }
        XCTAssertTrue(verification.isValid)
        XCTAssertEqual(verification.events, 5)
        XCTAssertEqual(first.previousHash, AuditChain.genesisHash)
        XCTAssertEqual(second.previousHash, first.hash)
        XCTAssertEqual(first.record, record(1))
        XCTAssertEqual(first.hash, AuditEvent.computeHash(previousHash: AuditChain.genesisHash, seq: 1, time: first.time, record: record(1)))
    }

    func testEachDocumentedEqualityFilterWalksAnIndexInSeqOrder() async throws {
        let store = try await makeStoreWithEvents(3)
        let filters: [(String, (inout AuditChain.Query) -> Void)] = [
            ("actor", { $0.actor = "spiffe://test/1" }), ("action", { $0.action = "vm.create" }),
            ("resourceType", { $0.resourceType = "vm" }), ("resourceId", { $0.resourceID = "vm-1" }),
            ("outcome", { $0.outcome = .denied }),
        ]
        for (name, set) in filters {
            var query = AuditChain.Query()
            query.after = 500_000
            set(&query)
            let (sql, arguments) = AuditChain.selection(query)
            let plan = try await store.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
            }.joined(separator: "; ")
            XCTAssertTrue(plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"), "\(name): \(plan)")
            XCTAssertFalse(plan.contains("TEMP B-TREE"), "\(name) sorts instead of walking in seq order: \(plan)")
        }
    }

    /// The walk that reads SQLite's row buffers must say exactly what the walk through decoded
    /// events says: for escapes, control characters, non-ASCII and NULLs, intact or tampered.
    func testRowBufferWalkAgreesWithTheDecodingWalk() async throws {
        let odd = [
            AuditRecord(actor: AuditActor(identity: "cn:\"quoted\" \\ back"), action: "grant.change", resourceType: "grants",
                        outcome: .denied),
            AuditRecord(actor: AuditActor(identity: "spiffe://x/é ü 🚀", role: "reader", remoteAddress: "[::1]:1"), requestID: "tab\there",
                        action: "vm.update", resourceType: "vm", resourceID: "vm-\u{1}\u{1f}", outcome: .failed, httpStatus: 500,
                        before: "{\"a\":\"line\nbreak\r\"}", after: ""),
        ]
        let tamperings = [
            nil, "UPDATE audit_events SET before_json = 'x\u{2}y' WHERE seq = 3", "UPDATE audit_events SET http_status = NULL WHERE seq = 4",
            "UPDATE audit_events SET actor_role = NULL WHERE seq = 2", "UPDATE audit_events SET prev_hash = zeroblob(32) WHERE seq = 5",
            "UPDATE audit_events SET hash = zeroblob(32) WHERE seq = 1",
        ]
        for tampering in tamperings {
            let store = try await makeStoreWithEvents(2)
            for record in odd + [record(3), record(4)] {
                _ = try await store.write { db in try AuditChain.append(record, in: db) }
            }
            if let tampering {
                try await store.pool.write { db in
                    try db.execute(sql: "DROP TRIGGER audit_events_no_update")
                    try db.execute(sql: tampering)
                }
            }
            let (fast, reference) = try await store.read { db in (try AuditChain.verify(in: db), try AuditChain.verifyByDecoding(in: db)) }
            XCTAssertEqual(fast, reference, tampering ?? "intact")
            XCTAssertEqual(fast.isValid, tampering == nil, tampering ?? "intact")
            // Split in two halves, at every place a split can fall, the answer is the same.
            for splitAbove in 1..<6 {
                XCTAssertEqual(try AuditChain.verify(reading: store.pool, splitAbove: splitAbove), reference, "\(tampering ?? "intact"), split above \(splitAbove)")
            }
        }
    }

    func testEmptyChainVerifies() throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        let verification = try store.pool.read { db in try AuditChain.verify(in: db) }
        XCTAssertEqual(verification, .init(isValid: true, events: 0, head: AuditChain.genesisHash.hexString, firstBrokenSeq: nil, reason: nil))
    }

    func testTriggersRefuseUpdateAndDelete() async throws {
        let store = try await makeStoreWithEvents(2)
        for sql in ["UPDATE audit_events SET actor_identity = 'mallory' WHERE seq = 1", "DELETE FROM audit_events WHERE seq = 2"] {
            do {
                try await store.pool.write { db in try db.execute(sql: sql) }
                XCTFail("\(sql) must be refused")
            } catch {
                XCTAssertTrue("\(error)".contains("append-only"), "\(error)")
            }
        }
    }

    func testAlteredEventIsDetectedAtItsSeq() async throws {
        let store = try await makeStoreWithEvents(6)
        try await store.pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_events_no_update")
            try db.execute(sql: "UPDATE audit_events SET actor_identity = 'mallory' WHERE seq = 4")
        }
        let verification = try await store.pool.read { db in try AuditChain.verify(in: db) }
        XCTAssertFalse(verification.isValid)
        XCTAssertEqual(verification.firstBrokenSeq, 4)
        XCTAssertEqual(verification.events, 3)
        XCTAssertTrue(verification.reason!.contains("altered"))
    }

    func testRewrittenHashIsDetectedAtTheNextSeq() async throws {
        // An attacker who alters seq 2 and recomputes its hash breaks the link from seq 3.
        let store = try await makeStoreWithEvents(4)
        try await store.pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_events_no_update")
            let event = try AuditChain.event(seq: 2, in: db)!
            var forged = event.record
            forged.actor.identity = "mallory"
            let hash = AuditEvent.computeHash(previousHash: event.previousHash, seq: 2, time: event.time, record: forged)
            try db.execute(sql: "UPDATE audit_events SET actor_identity = 'mallory', hash = ? WHERE seq = 2", arguments: [hash])
        }
        let verification = try await store.pool.read { db in try AuditChain.verify(in: db) }
        XCTAssertEqual(verification.firstBrokenSeq, 3)
    }

    func testHalvesAgreeWithTheWholeWalkOnDeletionsAndCheckpoints() async throws {
        let directory = try makeScratchDirectory(self)
        let store = try Store(dataDirectory: directory)
        for n in 1...9 {
            let record = record(n)
            _ = try await store.write { db in try AuditChain.append(record, in: db) }
        }
        let key = try XCTUnwrap(try AuditSigningKey.load(dataDirectory: directory, create: true))
        _ = try await store.write { db in try AuditCheckpoints.create(with: key, in: db) }
        let whole = try await store.read { db in try AuditChain.verify(in: db, trustedKey: key.publicKey) }
        XCTAssertTrue(whole.isValid)
        XCTAssertEqual(try AuditChain.verify(reading: store.pool, trustedKey: key.publicKey, splitAbove: 2), whole)
        try await store.pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_events_no_delete")
            try db.execute(sql: "DELETE FROM audit_events WHERE seq IN (5, 9)")
        }
        let broken = try await store.read { db in try AuditChain.verify(in: db, trustedKey: key.publicKey) }
        XCTAssertFalse(broken.isValid)
        for splitAbove in 1..<9 {
            XCTAssertEqual(try AuditChain.verify(reading: store.pool, trustedKey: key.publicKey, splitAbove: splitAbove), broken,
                           "split above \(splitAbove)")
        }
    }

    func testDeletedEventIsDetected() async throws {
        let store = try await makeStoreWithEvents(5)
        try await store.pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_events_no_delete")
            try db.execute(sql: "DELETE FROM audit_events WHERE seq = 3")
        }
        let verification = try await store.pool.read { db in try AuditChain.verify(in: db) }
        XCTAssertEqual(verification.firstBrokenSeq, 3)
        XCTAssertTrue(verification.reason!.contains("missing"))
    }

    func testChangeAndAuditEventRollBackTogether() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        _ = try await store.write { db in try VMRepository.create(VMSpec(name: "a"), actor: AuditActor(identity: "t"), in: db) }
        do {
            _ = try await store.write { db in try VMRepository.create(VMSpec(name: "a"), actor: AuditActor(identity: "t"), in: db) }
            XCTFail("a duplicate name must be refused")
        } catch let error as StoreError {
            XCTAssertEqual(error, .conflict(resourceType: "vm", field: "name", value: "a"))
        }
        let (vms, events) = try await store.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM vms")!, try AuditChain.headSeq(in: db))
        }
        XCTAssertEqual(vms, 1)
        XCTAssertEqual(events, 1)
    }

    func testCanonicalBytesEscapeAndOrderFields() {
        let record = AuditRecord(actor: AuditActor(identity: "a\"b\n"), action: "x", resourceType: "vm", outcome: .denied)
        let text = String(decoding: AuditEvent.canonicalBytes(seq: 9, time: "t", record: record), as: UTF8.self)
        XCTAssertEqual(text, #"{"action":"x","actorIdentity":"a\"b\n","actorRole":null,"after":null,"before":null,"httpStatus":null,"outcome":"denied","remoteAddress":null,"requestId":null,"resourceId":null,"resourceType":"vm","seq":9,"time":"t"}"#)
        let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        XCTAssertEqual(parsed?["actorIdentity"] as? String, "a\"b\n")
    }
}

extension AuditChainTests {
    /// The canonical bytes as they were first written, through strings: what every stored
    /// hash was computed from, so what the byte writer must give for any record.
    private static func canonicalByStrings(seq: Int, time: String, record: AuditRecord) -> Data {
        let fields: [(String, String)] = [
            ("action", JSONText.string(record.action)), ("actorIdentity", JSONText.string(record.actor.identity)),
            ("actorRole", JSONText.optionalString(record.actor.role)), ("after", JSONText.optionalString(record.after)),
            ("before", JSONText.optionalString(record.before)), ("httpStatus", JSONText.optionalInteger(record.httpStatus)),
            ("outcome", JSONText.string(record.outcome.rawValue)), ("remoteAddress", JSONText.optionalString(record.actor.remoteAddress)),
            ("requestId", JSONText.optionalString(record.requestID)), ("resourceId", JSONText.optionalString(record.resourceID)),
            ("resourceType", JSONText.string(record.resourceType)), ("seq", String(seq)), ("time", JSONText.string(time)),
        ]
        return Data(("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}").utf8)
    }

    func testCanonicalBytesEqualTheirFirstStringBuiltForm() {
        let texts: [String?] = [nil, "", "x", "a\"b\\c", "line\nfeed\ttab\r", "\u{0}\u{1f}\u{7f}", "é ✓ 😀", #"{"after":{"k":"v"}}"#,
                                String(repeating: "long ", count: 400)]
        var generator = SystemRandomNumberGenerator()
        func any() -> String? { texts.randomElement(using: &generator)! }
        for _ in 0..<5_000 {
            let record = AuditRecord(actor: AuditActor(identity: any() ?? "id", role: any(), remoteAddress: any()), requestID: any(),
                                     action: any() ?? "vm.create", resourceType: any() ?? "vm", resourceID: any(),
                                     outcome: [.success, .denied, .failed].randomElement(using: &generator)!,
                                     httpStatus: [nil, 0, 201, -1, Int.max, Int.min].randomElement(using: &generator)!, before: any(), after: any())
            let seq = [1, 9, 10, 1_000_000, Int.max].randomElement(using: &generator)!, time = any() ?? "2026-12-05T00:00:00.000Z"
            let expected = Self.canonicalByStrings(seq: seq, time: time, record: record)
            XCTAssertEqual(AuditEvent.canonicalBytes(seq: seq, time: time, record: record), expected)
            let previous = Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
            XCTAssertEqual(AuditEvent.computeHash(previousHash: previous, seq: seq, time: time, record: record), SHA256.digest(previous + expected))
        }
    }
}

extension AuditChain {
    /// The chain walk as it was written first, through decoded `AuditEvent` values: the
    /// reference the row-buffer walk (`ChainWalk`) is held to.
    static func verifyByDecoding(in db: Database) throws -> AuditChain.Verification {
        var expectedSeq = 1
        var previousHash = AuditChain.genesisHash
        let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM audit_events ORDER BY seq")
        while let row = try cursor.next() {
            let event = AuditEvent(row: row)
            func broken(_ reason: String) -> AuditChain.Verification {
                AuditChain.Verification(isValid: false, events: expectedSeq - 1, head: previousHash.hexString,
                             firstBrokenSeq: event.seq == expectedSeq ? event.seq : expectedSeq, reason: reason)
            }
            if event.seq != expectedSeq {
                return broken("expected seq \(expectedSeq), found \(event.seq): events are missing")
            }
            if event.previousHash != previousHash {
                return broken("prev_hash does not match the hash of seq \(expectedSeq - 1)")
            }
            let recomputed = AuditEvent.computeHash(previousHash: previousHash, seq: event.seq, time: event.time, record: event.record)
            if recomputed != event.hash {
                return broken("hash does not match the event's contents: the event was altered")
            }
            previousHash = event.hash
            expectedSeq += 1
        }
        return AuditChain.Verification(isValid: true, events: expectedSeq - 1, head: previousHash.hexString, firstBrokenSeq: nil, reason: nil)
    }
}
