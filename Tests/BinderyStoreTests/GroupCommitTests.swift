@testable import BinderyStore
import Foundation
import GRDB
import XCTest

final class GroupCommitTests: XCTestCase {
    private static func spec(_ name: String) -> VMSpec {
        VMSpec(name: name, memory: [MemoryRegion(guestAddress: 0, size: 4096)])
    }

    func testSixtyFourConcurrentWritersAreAllDurable() async throws {
        let directory = try makeScratchDirectory(self)
        let store = try Store(dataDirectory: directory)
        let ids = try await withThrowingTaskGroup(of: [String].self) { group in
            for writer in 0..<64 {
                group.addTask {
                    var ids: [String] = []
                    for n in 0..<10 {
                        let spec = Self.spec("w\(writer)-\(n)")
                        ids.append(try await store.write { db in try VMRepository.create(spec, actor: AuditActor(identity: "t"), in: db).id })
                    }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        XCTAssertEqual(ids.count, 640)
        let statistics = store.writer.statistics
        XCTAssertEqual(statistics.writes, 640)
        XCTAssertLessThanOrEqual(statistics.commits, statistics.writes)

        // A second, independent connection sees every acknowledged write and a valid chain.
        let reopened = try DatabaseQueue(path: directory + "/" + Store.fileName)
        try await reopened.read { db in
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM vms"), 640)
            XCTAssertEqual(Set(try String.fetchAll(db, sql: "SELECT id FROM vms")), Set(ids))
            XCTAssertTrue(try AuditChain.verify(in: db).isValid)
            XCTAssertEqual(try AuditChain.headSeq(in: db), 640)
        }
    }

    /// Holds the writer inside one write (creating VM `holderName`) while `launch` queues
    /// `queued` more, then lets it go; returns what `launch`'s task returned. The queued
    /// writes must then share the next commit.
    private func withWriterHeld<T: Sendable>(
        _ store: Store, holderName: String, queued: Int, launch: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let gate = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let holder = Task {
            try await store.write { db in
                entered.signal()
                gate.wait()
                return try VMRepository.create(VMSpec(name: holderName), actor: AuditActor(identity: "t"), in: db).id
            }
        }
        await waitFor(entered)
        let launched = Task { try await launch() }
        while store.writer.queuedCount < queued { try await Task.sleep(nanoseconds: 1_000_000) }
        gate.signal()
        _ = try await holder.value
        return try await launched.value
    }

    /// 63 writes queued behind a held one commit together: 64 writes, exactly two commits.
    func testQueuedWritesShareOneCommit() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        try await withWriterHeld(store, holderName: "first", queued: 63) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<63 {
                    group.addTask {
                        _ = try await store.write { db in try VMRepository.create(VMSpec(name: "n\(n)"), actor: AuditActor(identity: "t"), in: db) }
                    }
                }
                try await group.waitForAll()
            }
        }
        XCTAssertEqual(store.writer.statistics, .init(commits: 2, writes: 64))
    }

    /// A write that fails inside a batch rolls back alone; its neighbours commit.
    func testFailingWriteDoesNotFailItsNeighbours() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        let names = ["a", "b", "dup", "dup", "c"]
        let outcomes = try await withWriterHeld(store, holderName: "holder", queued: names.count) {
            await withTaskGroup(of: (String, Bool).self) { group in
                for name in names {
                    group.addTask {
                        do {
                            _ = try await store.write { db in try VMRepository.create(VMSpec(name: name), actor: AuditActor(identity: "t"), in: db) }
                            return (name, true)
                        } catch {
                            return (name, false)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        XCTAssertEqual(outcomes.filter { !$0.1 }.map(\.0), ["dup"], "exactly one of the duplicates fails")
        XCTAssertEqual(store.writer.statistics.commits, 2)
        let (stored, verified) = try await store.read { db in
            (try String.fetchAll(db, sql: "SELECT name FROM vms ORDER BY name"), try AuditChain.verify(in: db))
        }
        XCTAssertEqual(stored, ["a", "b", "c", "dup", "holder"])
        XCTAssertTrue(verified.isValid)
        XCTAssertEqual(verified.events, 5, "the failed write's audit event rolled back with it")
    }

    func testCommitPerWriteModeCommitsEachWrite() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self), maximumBatchSize: 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<20 {
                group.addTask { _ = try await store.write { db in try VMRepository.create(VMSpec(name: "v\(n)"), actor: AuditActor(identity: "t"), in: db) } }
            }
            try await group.waitForAll()
        }
        XCTAssertEqual(store.writer.statistics, .init(commits: 20, writes: 20))
    }

    func testBlockingWriteAndWaitReturnsTheValue() throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        let vm = try store.writer.writeAndWait { db in try VMRepository.create(VMSpec(name: "cli"), actor: AuditActor(identity: "cli"), in: db) }
        XCTAssertEqual(try store.pool.read { db in try VMRepository.fetch(id: vm.id, in: db) }, vm)
        XCTAssertThrowsError(try store.writer.writeAndWait { db in try VMRepository.create(VMSpec(name: "cli"), actor: AuditActor(identity: "cli"), in: db) })
    }

    /// Waits for `semaphore` off the cooperative pool.
    private func waitFor(_ semaphore: DispatchSemaphore) async {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                semaphore.wait()
                continuation.resume()
            }
        }
    }
}
