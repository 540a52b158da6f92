import CBinderySQLite
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// A transaction's handle, as repositories take it. Layers above the store name this, never GRDB.
public typealias StoreTransaction = Database

/// Bindery's SQLite database: WAL, `synchronous=FULL`, foreign keys, a busy timeout,
/// pooled readers and one group-committing writer. Opening it applies migrations.
public final class Store: Sendable {
    /// The file name of the database inside the data directory.
    public static let fileName = "bindery.sqlite"

    /// The database file.
    public let path: String
    /// The pool: concurrent readers, one serialized writer connection.
    public let pool: DatabasePool
    /// The group-commit writer every write goes through.
    public let writer: GroupCommitWriter
    /// Writes the representations kept with VMs and bindings (`StoredRepresentations`); nil:
    /// none are written, and reads use the columns.
    public let renderer: (any RepresentationRenderer)?

    /// Opens (creating if needed) the database in `dataDirectory` and migrates it. A data
    /// directory it creates is 0700: it holds the audit history and every VM's desired state.
    /// - Parameter maximumBatchSize: 1 turns group commit off (for comparisons).
    public convenience init(dataDirectory: String, maximumBatchSize: Int = 512, migrator: Migrator? = nil,
                            renderer: (any RepresentationRenderer)? = nil) throws {
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw StoreError.cannotOpen(path: dataDirectory, reason: "mkdir: \(error.localizedDescription)")
        }
        try self.init(path: (dataDirectory as NSString).appendingPathComponent(Store.fileName),
                      maximumBatchSize: maximumBatchSize, migrator: migrator, renderer: renderer)
    }

    /// Opens (creating if needed) the database file at `path` and migrates it. The file, and
    /// so its WAL and shared-memory files (SQLite gives them the database's mode), are 0600.
    /// With a `renderer`, reads answer from the representations it stores (`requestRendering`).
    public init(path: String, maximumBatchSize: Int = 512, migrator: Migrator? = nil, renderer: (any RepresentationRenderer)? = nil) throws {
        Self.configureSQLite()
        try Self.restrictToOwner(path)
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.label = "bindery"
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB's WAL setup leaves the writer at synchronous=NORMAL, which can lose the last
            // commits on power loss. FULL fsyncs the WAL on every commit: a 2xx stays true.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        } catch {
            throw StoreError.cannotOpen(path: path, reason: "\(error)")
        }
        self.path = path
        self.renderer = renderer
        writer = GroupCommitWriter(database: pool, maximumBatchSize: maximumBatchSize)
        try (migrator ?? Migrator()).migrate(pool)
    }

    /// Every queued write runs in its own savepoint, whose statement journal holds the pages
    /// it changes. Past SQLite's default of 64 KiB the journal spills to a file in /var/tmp and
    /// every page after is written there first; a create's changes reach that (perf on POST
    /// /v1/vms: about 25 µs of a create). 128 KiB in memory holds a create; a bulk write (an
    /// expiry sweep, a restart's status reset) still spills, so a write's memory stays bounded
    /// whatever a client stored. No more: SQLite 3.40.1 fails large statements with
    /// SQLITE_FULL when this is above 128 KiB (any of 192 KiB to 4 MiB, tried). A process
    /// setting, taken only before SQLite's first connection: `Store` applies it before opening
    /// its first database. True when it took.
    @discardableResult
    public static func configureSQLite() -> Bool { sqliteConfigured }

    private static let sqliteConfigured = bindery_sqlite_set_statement_journal_spill(statementJournalInMemory) == SQLITE_OK

    /// The statement journal SQLite keeps in memory per savepoint (`configureSQLite`).
    public static let statementJournalInMemory: Int32 = 128 << 10

    /// Creates the database file 0600 when missing; tightens an existing one (and its WAL and
    /// shm files) that others could read.
    private static func restrictToOwner(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.cannotOpen(path: path, reason: "open: \(String(cString: strerror(errno)))") }
        close(fd)
        for file in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            if stat(file, &info) == 0, info.st_mode & 0o077 != 0, chmod(file, 0o600) != 0 {
                throw StoreError.cannotOpen(path: file, reason: "chmod 0600: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Runs `body` in a durable group-committed transaction (see `GroupCommitWriter`).
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await writer.write(body)
    }

    /// Asks the writer to render the representations of the VMs `vms` and bindings `bindings`
    /// (read from their columns because they were not rendered): one write renders what is asked
    /// meanwhile, in the background. An id is rendered at its second asking: a resource read
    /// once (a client paging through every VM once) is not worth a write, one read again is
    /// (rendering every page of a first walk through 20,000 VMs tripled its CPU per page).
    /// At most `pendingRenderLimit` ids wait; more are asked for again by their next read. A
    /// write that fails leaves them to their next read too.
    public func requestRendering(vms: [String] = [], bindings: [String] = []) {
        guard let renderer else { return }
        guard !vms.isEmpty || !bindings.isEmpty else { return }
        let mustStart = renderRequests.withLock { requests in
            for id in vms where requests.count < Self.pendingRenderLimit && requests.isAskedAgain("vm " + id) { requests.vms.insert(id) }
            for id in bindings where requests.count < Self.pendingRenderLimit && requests.isAskedAgain("binding " + id) {
                requests.bindings.insert(id)
            }
            guard !requests.isRendering, requests.count > 0 else { return false }
            requests.isRendering = true
            return true
        }
        guard mustStart else { return }
        Task.detached { [self] in
            while let (vms, bindings) = renderRequests.withLock({ requests -> (Set<String>, Set<String>)? in
                guard requests.count > 0 else {
                    requests.isRendering = false
                    return nil
                }
                defer { (requests.vms, requests.bindings) = ([], []) }
                return (requests.vms, requests.bindings)
            }) {
                _ = try? await write { db in try StoredRepresentations.render(vms: vms, bindings: bindings, with: renderer, in: db) }
            }
        }
    }

    /// The most ids `requestRendering` keeps waiting.
    public static let pendingRenderLimit = 4096

    /// Ids waiting to be rendered, and whether a task is rendering them.
    struct RenderRequests {
        var vms: Set<String> = []
        var bindings: Set<String> = []
        var isRendering = false
        /// Resources asked for once (forgotten all at once past `askedOnceLimit`).
        var askedOnce: Set<String> = []
        var count: Int { vms.count + bindings.count }

        /// Whether `key` was asked for before; remembers it otherwise.
        mutating func isAskedAgain(_ key: String) -> Bool {
            if askedOnce.remove(key) != nil { return true }
            if askedOnce.count >= Store.askedOnceLimit { askedOnce.removeAll(keepingCapacity: true) }
            askedOnce.insert(key)
            return false
        }
    }

    /// The most resources remembered as asked for once (about 1 MiB of ids).
    static let askedOnceLimit = 16_384

    private let renderRequests = Mutex(RenderRequests())

    /// Runs `body` on a reader connection, in a consistent snapshot.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }

    /// Runs `body` in a consistent snapshot on the calling thread, with the read-only connection
    /// kept for `slot` (an event loop: one thread uses a slot at a time). No hand-off to the
    /// pool's threads, so a short read costs what SQLite costs; a long one holds up the caller.
    /// The snapshot is kept for the next read of the slot while the writer commits nothing
    /// (`GroupCommitWriter.committedTransactions`), so a caller that heard back from a write
    /// reads it, until `endHeldRead`: starting and ending a read transaction, two `fcntl`
    /// locks on the WAL index, was a tenth of a GET's CPU. What that allows, for the reads
    /// of one wakeup of a loop: a write by another process, or one the writer committed but
    /// has not counted yet, may be read by one slot and not yet by another.
    public func readHere<T>(slot: Int, _ body: (Database) throws -> T) throws -> T {
        let reader = try slotReader(slot)
        let commits = writer.committedTransactions
        return try reader.queue.inDatabase { db in
            if reader.snapshotAt != commits || !db.isInsideTransaction {
                if db.isInsideTransaction { try db.execute(sql: "COMMIT") }
                reader.snapshotAt = nil
                try db.execute(sql: "BEGIN DEFERRED")  // the snapshot is taken by `body`'s first read
                reader.snapshotAt = commits
            }
            return try body(db)
        }
    }

    /// Ends the snapshot `readHere` keeps for `slot`, if any: an event loop calls this before it
    /// waits, so an idle loop never holds the WAL back from a checkpoint nor reads old rows
    /// another process wrote.
    public func endHeldRead(slot: Int) {
        // Read outside the queue: only the slot's own thread sets it.
        guard let reader = slotReaders.withLock({ $0[slot] }), reader.snapshotAt != nil else { return }
        try? reader.queue.inDatabase { db in
            if db.isInsideTransaction { try db.execute(sql: "COMMIT") }
            reader.snapshotAt = nil
        }
    }

    /// The read-only connection of `slot`, opened on first use.
    private func slotReader(_ slot: Int) throws -> SlotReader {
        try slotReaders.withLock { readers in
            if let reader = readers[slot] { return reader }
            var configuration = Configuration()
            configuration.readonly = true
            // An event loop waits at most this on a locked database (WAL readers rarely wait at all).
            configuration.busyMode = .timeout(0.1)
            configuration.label = "bindery.slot\(slot)"
            configuration.allowsUnsafeTransactions = true  // the snapshot kept between reads
            let reader = SlotReader(queue: try DatabaseQueue(path: path, configuration: configuration))
            readers[slot] = reader
            return reader
        }
    }

    /// A slot's connection and the snapshot it keeps. Touched only inside its queue.
    private final class SlotReader: @unchecked Sendable {
        let queue: DatabaseQueue
        /// `GroupCommitWriter.committedTransactions` when the kept snapshot began; nil: none kept.
        var snapshotAt: Int?
        init(queue: DatabaseQueue) { self.queue = queue }
    }

    /// The read-only connections of `readHere`, by slot, opened on first use.
    private let slotReaders = Mutex<[Int: SlotReader]>([:])
}
