@testable import BinderyStore
import Foundation
import GRDB
import XCTest

final class IdempotencyTests: XCTestCase {
    func testClaimReplayMismatchInFlightAndExpiry() throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        let body = SHA256.digest(Data("POST /v1/vms {}".utf8)), other = SHA256.digest(Data("POST /v1/vms {\"x\":1}".utf8))
        try store.pool.write { db in
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "k", digest: body, in: db), .proceed)
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "k", digest: body, in: db), .inFlight, "the first is still running")
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "k", digest: other, in: db), .mismatch)
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "b", key: "k", digest: other, in: db), .proceed, "keys are per identity")
            try IdempotencyRepository.complete(identity: "a", key: "k", status: 201, headers: ["ETag": "\"1\""], body: Array("{}".utf8), in: db)
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "k", digest: body, in: db),
                           .replay(status: 201, headers: ["ETag": "\"1\""], body: Array("{}".utf8)))
            let expiry = try String.fetchOne(db, sql: "SELECT expires_at FROM idempotency_keys WHERE identity = 'a'")!
            XCTAssertGreaterThanOrEqual(Timestamp.parse(expiry)!.timeIntervalSinceNow, 24 * 3600 - 60, "kept at least 24 hours")
            try db.execute(sql: "UPDATE idempotency_keys SET expires_at = '2000-01-01T00:00:00.000Z' WHERE identity = 'a'")
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "k", digest: other, in: db), .proceed, "expired keys are forgotten")
            try IdempotencyRepository.release(identity: "b", key: "k", in: db)
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "b", key: "k", digest: body, in: db), .proceed, "released after a 5xx")
        }
    }

    func testAKeyLeftInFlightByACrashIsReclaimedAtTheNextStartAndCompletedOnesStay() throws {
        let directory = try makeScratchDirectory(self)
        let body = SHA256.digest(Data("POST /v1/vms {}".utf8))
        do {
            let crashed = try Store(dataDirectory: directory)
            try crashed.pool.write { db in
                XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "lost", digest: body, in: db), .proceed)
                XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "done", digest: body, in: db), .proceed)
                try IdempotencyRepository.complete(identity: "a", key: "done", status: 201, headers: [:], body: [], in: db)
            }
        }
        let restarted = try Store(dataDirectory: directory)
        try restarted.pool.write { db in
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "lost", digest: body, in: db), .inFlight, "before reclaiming")
            XCTAssertEqual(try IdempotencyRepository.reclaimAbandoned(in: db), 1)
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "lost", digest: body, in: db), .proceed, "the retry runs again")
            XCTAssertEqual(try IdempotencyRepository.claim(identity: "a", key: "done", digest: body, in: db), .replay(status: 201, headers: [:], body: []))
        }
    }
}
