@testable import BinderyStore
import GRDB
import XCTest

/// Signed checkpoints: they verify with the chain, and they catch what the chain alone cannot
/// (a lost tail), as well as their own tampering and a foreign key.
final class AuditCheckpointTests: XCTestCase {
    private func append(_ count: Int, to store: Store) async throws {
        for n in 1...count {
            let record = AuditRecord(actor: AuditActor(identity: "spiffe://test/\(n)"), action: "vm.create", resourceType: "vm",
                                     resourceID: "vm-\(n)", outcome: .success)
            _ = try await store.write { db in try AuditChain.append(record, in: db) }
        }
    }

    private func makeStore() async throws -> (Store, AuditSigningKey, String) {
        let directory = try makeScratchDirectory(self)
        let store = try Store(dataDirectory: directory)
        let key = try XCTUnwrap(try AuditSigningKey.load(dataDirectory: directory, create: true))
        try await append(5, to: store)
        return (store, key, directory)
    }

    func testCheckpointsVerifyWithTheChainAndAreNotRepeated() async throws {
        let (store, key, _) = try await makeStore()
        let first = try await store.write { db in try AuditCheckpoints.create(with: key, in: db) }
        try await append(3, to: store)
        let second = try await store.write { db in try AuditCheckpoints.create(with: key, in: db) }
        let again = try await store.write { db in try AuditCheckpoints.create(with: key, in: db) }
        XCTAssertEqual(first?.seq, 5)
        XCTAssertEqual(second?.seq, 8)
        XCTAssertEqual(again, second, "no new checkpoint while the head has not moved")
        XCTAssertTrue(second?.isSignatureValid ?? false)
        let verification = try await store.read { db in try AuditChain.verify(in: db, trustedKey: key.publicKey) }
        XCTAssertTrue(verification.isValid, verification.reason ?? "")
        XCTAssertEqual(verification.checkpoints, 2)
        XCTAssertEqual(verification.events, 8)
    }

    func testTruncatedTailIsDetectedOnlyWithACheckpoint() async throws {
        let (store, key, _) = try await makeStore()
        let dropTail: @Sendable (Database) throws -> Void = { db in
            try db.execute(sql: "DROP TRIGGER IF EXISTS audit_events_no_delete")
            try db.execute(sql: "DELETE FROM audit_events WHERE seq > 3")
        }
        // Without a checkpoint, a chain cut at its end still links: nothing in it can tell.
        let unsigned = try Store(dataDirectory: try makeScratchDirectory(self))
        try await append(5, to: unsigned)
        try await unsigned.pool.write { db in try dropTail(db) }
        let cut = try await unsigned.read { db in try AuditChain.verify(in: db) }
        XCTAssertTrue(cut.isValid, "the gap checkpoints close")

        _ = try await store.write { db in try AuditCheckpoints.create(with: key, in: db) }
        try await store.pool.write { db in try dropTail(db) }
        let verification = try await store.read { db in try AuditChain.verify(in: db, trustedKey: key.publicKey) }
        XCTAssertFalse(verification.isValid)
        XCTAssertEqual(verification.firstBrokenSeq, 4)
        XCTAssertEqual(verification.events, 3)
        XCTAssertTrue(verification.reason?.contains("truncated") ?? false, verification.reason ?? "")
    }

    func testTamperedCheckpointIsDetected() async throws {
        for tampering in ["UPDATE audit_checkpoints SET time = '2020-01-01T00:00:00Z'",
                          "UPDATE audit_checkpoints SET head_hash = zeroblob(32)",
                          "UPDATE audit_checkpoints SET seq = 4"] {
            let (store, key, _) = try await makeStore()
            _ = try await store.write { db in try AuditCheckpoints.create(with: key, in: db) }
            try await store.pool.write { db in
                try db.execute(sql: "DROP TRIGGER audit_checkpoints_no_update")
                try db.execute(sql: tampering)
            }
            let verification = try await store.read { db in try AuditChain.verify(in: db, trustedKey: key.publicKey) }
            XCTAssertFalse(verification.isValid, tampering)
            XCTAssertTrue(verification.reason?.contains("does not match its signature") ?? false, "\(tampering): \(verification.reason ?? "")")
        }
    }

    func testCheckpointSignedByAnotherKeyIsRefused() async throws {
        let (store, key, _) = try await makeStore()
        let stranger = try XCTUnwrap(try AuditSigningKey.load(dataDirectory: try makeScratchDirectory(self), create: true))
        _ = try await store.write { db in try AuditCheckpoints.create(with: stranger, in: db) }
        let trusting = try await store.read { db in try AuditChain.verify(in: db, trustedKey: key.publicKey) }
        XCTAssertFalse(trusting.isValid)
        XCTAssertTrue(trusting.reason?.contains("not this host's") ?? false, trusting.reason ?? "")
        let anyKey = try await store.read { db in try AuditChain.verify(in: db) }
        XCTAssertTrue(anyKey.isValid, "without a trusted key, a valid signature is enough")
    }

    func testSigningKeyIsPrivateAndStable() async throws {
        let (_, key, directory) = try await makeStore()
        let again = try XCTUnwrap(try AuditSigningKey.load(dataDirectory: directory, create: false))
        XCTAssertEqual(again.publicKey, key.publicKey)
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/" + AuditSigningKey.fileName)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        XCTAssertNil(try AuditSigningKey.load(dataDirectory: try makeScratchDirectory(self), create: false))
        try "not hex\n".write(toFile: directory + "/" + AuditSigningKey.fileName, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AuditSigningKey.load(dataDirectory: directory, create: false))
    }
}
