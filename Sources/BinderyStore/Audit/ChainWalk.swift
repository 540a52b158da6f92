import COpenSSL
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Verifies the chain straight from SQLite's row buffers: each event's canonical bytes
/// (`AuditEvent.canonicalBytes`) are written into one reused buffer and hashed, with no
/// String, Data or AuditEvent made per event. About 1 µs an event instead of 7.
enum ChainWalk {
    /// A stretch of seqs, in `AuditColumn` order.
    private static let sql = "SELECT \(AuditColumn.list) FROM audit_events WHERE seq BETWEEN ? AND ? ORDER BY seq"

    /// Walks the whole chain in one read and checks every checkpoint against it: its signature,
    /// its key (when `trustedKey` is given, the only key allowed), the chain's hash at its seq,
    /// and that the chain reaches it at all.
    static func verify(in db: Database, trustedKey: [UInt8]?) throws -> AuditChain.Verification {
        let checkpoints = try AuditCheckpoints.list(after: 0, limit: Int.max, in: db)
        let whole = try walk(in: db, from: 1, through: Int.max, previous: [UInt8](AuditChain.genesisHash),
                             checkpoints: checkpoints[...], trustedKey: trustedKey)
        return whole.verification.isValid ? truncation(of: whole.verification, checkpoints: checkpoints, trustedKey: trustedKey)
            : whole.verification
    }

    /// The same, in two halves read and hashed at once on two connections of `pool` (a chain is
    /// checkable in stretches: each event carries its predecessor's hash, and the link between
    /// the halves is checked last). The head and the checkpoints come from one snapshot first;
    /// events up to that head never change, so the halves' later snapshots agree on them.
    static func verifyInParallel(pool: DatabasePool, trustedKey: [UInt8]?, splitAbove: Int = 20_000) throws -> AuditChain.Verification {
        let (head, checkpoints) = try pool.read { db in
            (try AuditChain.headSeq(in: db), try AuditCheckpoints.list(after: 0, limit: Int.max, in: db))
        }
        guard head > splitAbove else { return try pool.read { db in try verify(in: db, trustedKey: trustedKey) } }
        let middle = head / 2
        let ranges = [1...middle, (middle + 1)...head]
        let outcomes = Mutex<[Result<Stretch, any Error>?]>([nil, nil])
        DispatchQueue.concurrentPerform(iterations: 2) { half in
            let range = ranges[half]
            let outcome = Result {
                try pool.read { db in
                    try walk(in: db, from: range.lowerBound, through: range.upperBound,
                             previous: half == 0 ? [UInt8](AuditChain.genesisHash) : nil,
                             checkpoints: checkpoints.filter { range.contains($0.seq) }[...], trustedKey: trustedKey)
                }
            }
            outcomes.withLock { $0[half] = outcome }
        }
        let (first, second) = try outcomes.withLock { (try $0[0]!.get(), try $0[1]!.get()) }
        guard first.verification.isValid else { return first.verification }
        var combined = second.verification
        combined.events += middle
        combined.checkpoints += first.verification.checkpoints
        // No event of the second half verified: the head is still the first half's last.
        if second.verification.events == 0 { combined.head = Data(first.last).hexString }
        // The second half broke before its first event's link could be read (a seq gap there).
        guard let link = second.firstPrevious else { return combined }
        if link != first.last {
            return AuditChain.Verification(isValid: false, events: middle, head: Data(first.last).hexString, firstBrokenSeq: middle + 1,
                                           reason: "prev_hash does not match the hash of seq \(middle)",
                                           checkpoints: first.verification.checkpoints)
        }
        guard combined.isValid else { return combined }
        return truncation(of: combined, checkpoints: checkpoints, trustedKey: trustedKey)
    }

    /// A valid walk, unless a checkpoint lies past its end: then the newest events are gone.
    private static func truncation(of walked: AuditChain.Verification, checkpoints: [AuditCheckpoint],
                                   trustedKey: [UInt8]?) -> AuditChain.Verification {
        guard let beyond = checkpoints.first(where: { $0.seq > walked.events }) else { return walked }
        var broken = walked
        broken.isValid = false
        broken.firstBrokenSeq = walked.events + 1
        broken.reason = problem(with: beyond, trustedKey: trustedKey)
            ?? "truncated: a checkpoint signed \(beyond.time) covers seq \(beyond.seq) but the chain ends at seq \(walked.events): its newest events are gone"
        return broken
    }

    /// What walking a stretch found: its verification (events counted within the stretch), the
    /// `prev_hash` its first event carried, and the hash of its last event.
    struct Stretch: Sendable {
        var verification: AuditChain.Verification
        var firstPrevious: [UInt8]?
        var last: [UInt8]
    }

    /// Walks seqs `from...through` (`Int.max`: to the end). `previous` is the hash the first
    /// event must link to; nil takes the first event's own `prev_hash` (the caller checks it).
    private static func walk(in db: Database, from: Int, through: Int, previous start: [UInt8]?,
                             checkpoints: ArraySlice<AuditCheckpoint>, trustedKey: [UInt8]?) throws -> Stretch {
        var nextCheckpoint = checkpoints.startIndex
        var checkpointsVerified = 0
        var firstPrevious: [UInt8]?
        let statement = try db.makeStatement(sql: sql)
        let cursor = try Row.fetchCursor(statement, arguments: [from, through])
        let row = statement.sqliteStatement
        var canonical = ByteBuffer(capacity: 16 * 1024)
        defer { canonical.deallocate() }
        var previous = start ?? []
        var digest = [UInt8](repeating: 0, count: 32)
        var expectedSeq = from
        func broken(at seq: Int, _ reason: String) -> Stretch {
            Stretch(verification: AuditChain.Verification(isValid: false, events: expectedSeq - from, head: Data(previous).hexString,
                                                          firstBrokenSeq: seq == expectedSeq ? seq : expectedSeq, reason: reason,
                                                          checkpoints: checkpointsVerified),
                    firstPrevious: firstPrevious, last: previous)
        }
        while try cursor.next() != nil {
            let seq = Int(sqlite3_column_int64(row, AuditColumn.seq.rawValue))
            if seq != expectedSeq {
                return broken(at: seq, "expected seq \(expectedSeq), found \(seq): events are missing")
            }
            if seq == from && start == nil, let stored = RowText.bytes(row, .previousHash) {
                previous = stored
                firstPrevious = stored
            }
            if !RowText.blob(row, .previousHash, equals: previous) {
                return broken(at: seq, "prev_hash does not match the hash of seq \(expectedSeq - 1)")
            }
            canonical.count = 0
            previous.withUnsafeBufferPointer { canonical.append($0.baseAddress!, $0.count) }
            for (key, column) in AuditEvent.canonicalFields {
                canonical.append(key)
                switch column {
                case .httpStatus:
                    if sqlite3_column_type(row, column.rawValue) == SQLITE_NULL {
                        canonical.append(RowText.null)
                    } else {
                        canonical.appendDecimal(sqlite3_column_int64(row, column.rawValue))
                    }
                case .seq: canonical.appendDecimal(Int64(seq))
                default: RowText.string(row, column, &canonical)
                }
            }
            canonical.append(UInt8(ascii: "}"))
            let ok = digest.withUnsafeMutableBufferPointer { bindery_sha256(canonical.base, canonical.count, $0.baseAddress) }
            precondition(ok == 1, "EVP_Digest(SHA-256) failed: libcrypto is unusable")
            if !RowText.blob(row, .hash, equals: digest) {
                return broken(at: seq, "hash does not match the event's contents: the event was altered")
            }
            while nextCheckpoint < checkpoints.endIndex, checkpoints[nextCheckpoint].seq <= seq {
                let checkpoint = checkpoints[nextCheckpoint]
                nextCheckpoint += 1
                if let reason = problem(with: checkpoint, trustedKey: trustedKey) { return broken(at: seq, reason) }
                if checkpoint.headHash != Data(digest) {
                    return broken(at: seq, "the checkpoint at seq \(seq) (signed \(checkpoint.time)) does not match the chain's hash there: "
                                  + "the history up to it was rewritten")
                }
                checkpointsVerified += 1
            }
            swap(&previous, &digest)
            expectedSeq += 1
        }
        if through != Int.max && expectedSeq <= through {
            return broken(at: expectedSeq, "expected seq \(expectedSeq), found the end of the chain: events are missing")
        }
        return Stretch(verification: AuditChain.Verification(isValid: true, events: expectedSeq - from, head: Data(previous).hexString,
                                                            firstBrokenSeq: nil, reason: nil, checkpoints: checkpointsVerified),
                       firstPrevious: firstPrevious, last: previous)
    }

    /// Why `checkpoint` cannot be trusted, or nil.
    private static func problem(with checkpoint: AuditCheckpoint, trustedKey: [UInt8]?) -> String? {
        if !checkpoint.isSignatureValid {
            return "the checkpoint at seq \(checkpoint.seq) (signed \(checkpoint.time)) does not match its signature: it was altered"
        }
        if let trustedKey, [UInt8](checkpoint.publicKey) != trustedKey {
            return "the checkpoint at seq \(checkpoint.seq) is signed by key \(checkpoint.publicKey.hexString), not this host's \(Data(trustedKey).hexString)"
        }
        return nil
    }

}

