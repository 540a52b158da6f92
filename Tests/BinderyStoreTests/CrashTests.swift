import BinderyStore
import Foundation
import GRDB
import XCTest

/// Kills a writer process with SIGKILL mid-stream and checks what survives.
final class CrashTests: XCTestCase {
    func testSIGKILLMidStreamKeepsEveryAcknowledgedWrite() throws {
        let directory = try makeScratchDirectory(self)
        for round in 1...3 {
            let acknowledged = try runAndKill(dataDirectory: directory, afterAcks: 150 * round)
            XCTAssertGreaterThanOrEqual(acknowledged.count, 150 * round)

            let queue = try DatabaseQueue(path: directory + "/" + Store.fileName)
            try queue.read { db in
                XCTAssertEqual(try String.fetchOne(db, sql: "PRAGMA integrity_check"), "ok")
                let verification = try AuditChain.verify(in: db)
                XCTAssertTrue(verification.isValid, "chain broken at \(String(describing: verification.firstBrokenSeq))")
                let stored = Set(try String.fetchAll(db, sql: "SELECT id FROM vms"))
                let missing = acknowledged.subtracting(stored)
                XCTAssertTrue(missing.isEmpty, "round \(round): \(missing.count) acknowledged writes lost")
                XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_events WHERE action = 'vm.create'"), stored.count)
            }
            try queue.close()
            // The store opens again (migrations verified) after the crash.
            _ = try Store(dataDirectory: directory)
        }
    }

    /// Starts `bindery-bench write-stream`, waits for `afterAcks` acknowledgements, kills it
    /// with SIGKILL, and returns every id it acknowledged before dying.
    private func runAndKill(dataDirectory: String, afterAcks: Int) throws -> Set<String> {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try builtProduct("bindery-bench"))
        process.arguments = ["write-stream", "--data-dir", dataDirectory, "--writers", "16", "--max-writes", "1000000"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()

        var acknowledged = Set<String>()
        var buffer = Data()
        let reader = output.fileHandleForReading
        var killed = false
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                if line.hasPrefix("ack ") { acknowledged.insert(String(line.dropFirst(4))) }
            }
            if !killed && acknowledged.count >= afterAcks {
                kill(process.processIdentifier, SIGKILL)
                killed = true
            }
        }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal, "the child must die by SIGKILL, not exit")
        return acknowledged
    }
}
