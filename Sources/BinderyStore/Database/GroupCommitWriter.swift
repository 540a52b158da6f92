import Foundation
import GRDB
import Synchronization

/// The store's single writer. Concurrent writes queue here; whatever is queued when the
/// writer becomes free runs as one transaction with one fsync (group commit), each write
/// in its own savepoint so a failing write leaves its neighbours intact. A caller hears
/// back only after the commit that holds its write is durable.
public final class GroupCommitWriter: @unchecked Sendable {
    /// Counters for tests and benchmarks.
    public struct Statistics: Sendable, Equatable {
        /// Transactions committed.
        public var commits = 0
        /// Writes that ran (succeeded or failed in their savepoint).
        public var writes = 0
    }

    private let database: any DatabaseWriter
    private let maximumBatchSize: Int
    private let queue = DispatchQueue(label: "bindery.store.group-commit")
    // Guarded by `lock`.
    private let lock = NSLock()
    private var pending: [any Job] = []
    private var isDraining = false
    private var writesRun = 0
    /// Fired after every durable commit.
    public let committed = CommitSignal()
    /// Transactions committed, counted before any of their writers hears back (changed under
    /// `lock` with `writesRun`, read without it by `committedTransactions`).
    private let commitCount = Atomic<Int>(0)

    /// How many transactions this writer has committed: a read snapshot taken after this
    /// count was read holds every write whose caller has heard back that many commits ago
    /// (`Store.readHere` keeps a snapshot while it does not change).
    public var committedTransactions: Int { commitCount.load(ordering: .acquiring) }

    /// A writer over `database`. `maximumBatchSize` 1 gives one commit per write (for comparison).
    public init(database: any DatabaseWriter, maximumBatchSize: Int = 512) {
        precondition(maximumBatchSize >= 1, "a batch holds at least one write")
        self.database = database
        self.maximumBatchSize = maximumBatchSize
    }

    /// Commits and writes so far.
    public var statistics: Statistics {
        lock.withLock { Statistics(commits: commitCount.load(ordering: .relaxed), writes: writesRun) }
    }

    /// Writes queued and not yet started.
    public var queuedCount: Int {
        lock.withLock { pending.count }
    }

    /// Runs `body` inside the next group transaction and returns its result once that
    /// transaction is durable. An error thrown by `body` rolls back only `body`'s changes.
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(QueuedWrite(body) { continuation.resume(with: $0) })
        }
    }

    /// Like `write`, for callers outside Swift concurrency (command-line tools): blocks until durable.
    public func writeAndWait<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        enqueue(QueuedWrite(body) { result in
            box.result = result
            done.signal()
        })
        done.wait()
        return try box.result!.get()
    }

    private func enqueue(_ job: any Job) {
        let mustStart: Bool = lock.withLock {
            pending.append(job)
            defer { isDraining = true }
            return !isDraining
        }
        if mustStart {
            queue.async { self.drain() }
        }
    }

    private func drain() {
        while true {
            let batch: [any Job] = lock.withLock {
                let batch = Array(pending.prefix(maximumBatchSize))
                pending.removeFirst(batch.count)
                if batch.isEmpty { isDraining = false }
                return batch
            }
            if batch.isEmpty { return }
            commit(batch)
        }
    }

    /// Runs `batch` in one transaction. If SQLite rolls the transaction back under a write
    /// (disk full, I/O error), the writes before it are lost with it and fail, and the writes
    /// after it go back to the head of the queue.
    private func commit(_ batch: [any Job]) {
        var ran = 0
        var lostTransaction: (any Error)?
        do {
            try database.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    for job in batch {
                        job.run(db)
                        ran += 1
                        if !db.isInsideTransaction {
                            lostTransaction = job.failure
                            throw StoreError.batchRolledBack(reason: "\(job.failure.map { "\($0)" } ?? "unknown")")
                        }
                    }
                    return .commit
                }
            }
        } catch {
            let reason = lostTransaction.map { "\($0)" } ?? "\(error)"
            let requeued = Array(batch[ran...])
            lock.withLock {
                writesRun += ran
                pending.insert(contentsOf: requeued, at: 0)
            }
            for job in batch[..<ran] {
                job.finish(StoreError.batchRolledBack(reason: reason))
            }
            return
        }
        lock.withLock {
            commitCount.add(1, ordering: .releasing)
            writesRun += batch.count
        }
        for job in batch {
            job.finish(nil)
        }
        committed.fire()
    }
}

/// One queued write: `run` executes it in a savepoint and keeps its outcome; `finish`
/// reports that outcome (or the transaction's failure) to the caller.
private protocol Job: AnyObject, Sendable {
    func run(_ db: Database)
    func finish(_ transactionError: (any Error)?)
    var failure: (any Error)? { get }
}

/// A queued write whose body returns `T`. Touched by the writer's queue only, then handed
/// to the caller through `complete`.
private final class QueuedWrite<T>: Job, @unchecked Sendable {
    private let body: (Database) throws -> T
    private let complete: (Result<T, any Error>) -> Void
    private var outcome: Result<T, any Error>?

    init(_ body: @escaping (Database) throws -> T, complete: @escaping (Result<T, any Error>) -> Void) {
        self.body = body
        self.complete = complete
    }

    var failure: (any Error)? {
        if case let .failure(error) = outcome { return error }
        return nil
    }

    /// Runs the body between `SAVEPOINT` and `RELEASE`, rolling back to the savepoint on error.
    /// Cached statements, not GRDB's `inSavepoint`: that prepares both statements on every
    /// write, on the one thread every write shares.
    func run(_ db: Database) {
        do {
            try db.cachedStatement(sql: "SAVEPOINT write").execute()
        } catch {
            outcome = .failure(error)
            return
        }
        do {
            let value = try body(db)
            try db.cachedStatement(sql: "RELEASE write").execute()
            outcome = .success(value)
        } catch {
            outcome = .failure(error)
            if db.isInsideTransaction {
                try? db.cachedStatement(sql: "ROLLBACK TO write").execute()
                try? db.cachedStatement(sql: "RELEASE write").execute()
            }
        }
    }

    func finish(_ transactionError: (any Error)?) {
        if let transactionError {
            complete(.failure(transactionError))
        } else {
            complete(outcome ?? .failure(StoreError.writerClosed))
        }
    }
}

/// A result handed from the writer's queue to a caller blocked in `writeAndWait`.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
