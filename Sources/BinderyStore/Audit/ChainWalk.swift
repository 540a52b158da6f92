import COpenSSL
import Foundation
import GRDB
import GRDBSQLite

/// Verifies the chain straight from SQLite's row buffers: each event's canonical bytes
/// (`AuditEvent.canonicalBytes`) are written into one reused buffer and hashed, with no
/// String, Data or AuditEvent made per event. About 1 µs an event instead of 7.
enum ChainWalk {
    /// The columns, in the order `Column` names them.
    private static let sql = """
        SELECT seq, time, actor_identity, actor_role, remote_address, request_id, action, resource_type,
               resource_id, outcome, http_status, before_json, after_json, prev_hash, hash
        FROM audit_events ORDER BY seq
        """

    private enum Column: Int32 {
        case seq, time, actorIdentity, actorRole, remoteAddress, requestID, action, resourceType
        case resourceID, outcome, httpStatus, before, after, previousHash, hash
    }

    /// Walks the chain and checks every checkpoint against it: its signature, its key (when
    /// `trustedKey` is given, the only key allowed), the chain's hash at its seq, and that the
    /// chain reaches it at all.
    static func verify(in db: Database, trustedKey: [UInt8]?) throws -> AuditChain.Verification {
        let checkpoints = try AuditCheckpoints.list(after: 0, limit: Int.max, in: db)
        var nextCheckpoint = checkpoints.startIndex
        var checkpointsVerified = 0
        let statement = try db.makeStatement(sql: sql)
        let cursor = try Row.fetchCursor(statement)
        let row = statement.sqliteStatement
        var canonical: [UInt8] = []
        canonical.reserveCapacity(8192)
        var previous = [UInt8](AuditChain.genesisHash)
        var digest = [UInt8](repeating: 0, count: 32)
        var expectedSeq = 1
        func broken(at seq: Int, _ reason: String) -> AuditChain.Verification {
            AuditChain.Verification(isValid: false, events: expectedSeq - 1, head: Data(previous).hexString,
                                    firstBrokenSeq: seq == expectedSeq ? seq : expectedSeq, reason: reason, checkpoints: checkpointsVerified)
        }
        while try cursor.next() != nil {
            let seq = Int(sqlite3_column_int64(row, Column.seq.rawValue))
            if seq != expectedSeq {
                return broken(at: seq, "expected seq \(expectedSeq), found \(seq): events are missing")
            }
            if !blob(row, .previousHash, equals: previous) {
                return broken(at: seq, "prev_hash does not match the hash of seq \(expectedSeq - 1)")
            }
            canonical.removeAll(keepingCapacity: true)
            canonical.append(contentsOf: previous)
            literal("{\"action\":", &canonical); string(row, .action, &canonical)
            literal(",\"actorIdentity\":", &canonical); string(row, .actorIdentity, &canonical)
            literal(",\"actorRole\":", &canonical); string(row, .actorRole, &canonical)
            literal(",\"after\":", &canonical); string(row, .after, &canonical)
            literal(",\"before\":", &canonical); string(row, .before, &canonical)
            literal(",\"httpStatus\":", &canonical)
            if sqlite3_column_type(row, Column.httpStatus.rawValue) == SQLITE_NULL {
                literal("null", &canonical)
            } else {
                literal(String(sqlite3_column_int64(row, Column.httpStatus.rawValue)), &canonical)
            }
            literal(",\"outcome\":", &canonical); string(row, .outcome, &canonical)
            literal(",\"remoteAddress\":", &canonical); string(row, .remoteAddress, &canonical)
            literal(",\"requestId\":", &canonical); string(row, .requestID, &canonical)
            literal(",\"resourceId\":", &canonical); string(row, .resourceID, &canonical)
            literal(",\"resourceType\":", &canonical); string(row, .resourceType, &canonical)
            literal(",\"seq\":", &canonical); literal(String(seq), &canonical)
            literal(",\"time\":", &canonical); string(row, .time, &canonical)
            canonical.append(UInt8(ascii: "}"))
            let ok = canonical.withUnsafeBytes { input in
                digest.withUnsafeMutableBufferPointer { bindery_sha256(input.baseAddress, input.count, $0.baseAddress) }
            }
            precondition(ok == 1, "EVP_Digest(SHA-256) failed: libcrypto is unusable")
            if !blob(row, .hash, equals: digest) {
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
        if nextCheckpoint < checkpoints.endIndex {
            let checkpoint = checkpoints[nextCheckpoint]
            let reason = problem(with: checkpoint, trustedKey: trustedKey)
                ?? "truncated: a checkpoint signed \(checkpoint.time) covers seq \(checkpoint.seq) but the chain ends at seq \(expectedSeq - 1): its newest events are gone"
            return broken(at: expectedSeq, reason)
        }
        return AuditChain.Verification(isValid: true, events: expectedSeq - 1, head: Data(previous).hexString, firstBrokenSeq: nil,
                                       reason: nil, checkpoints: checkpointsVerified)
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

    private static func literal(_ text: String, _ out: inout [UInt8]) {
        out.append(contentsOf: text.utf8)
    }

    private static func blob(_ row: OpaquePointer, _ column: Column, equals expected: [UInt8]) -> Bool {
        guard sqlite3_column_type(row, column.rawValue) == SQLITE_BLOB else { return false }
        let count = Int(sqlite3_column_bytes(row, column.rawValue))
        guard count == expected.count, let bytes = sqlite3_column_blob(row, column.rawValue) else { return false }
        return expected.withUnsafeBytes { memcmp($0.baseAddress!, bytes, count) == 0 }
    }

    /// The column as a JSON string literal, escaped exactly as `JSONText.string`, or `null`.
    private static func string(_ row: OpaquePointer, _ column: Column, _ out: inout [UInt8]) {
        guard sqlite3_column_type(row, column.rawValue) != SQLITE_NULL, let text = sqlite3_column_text(row, column.rawValue) else {
            literal("null", &out)
            return
        }
        let bytes = UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(row, column.rawValue)))
        out.append(UInt8(ascii: "\""))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var start = 0
        for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
            start = index + 1
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            default: out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xf)]]
            }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        out.append(UInt8(ascii: "\""))
    }
}
