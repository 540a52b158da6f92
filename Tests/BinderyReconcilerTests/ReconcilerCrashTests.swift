import BinderyStore
import Foundation
import GRDB
import XCTest

/// SIGKILL during reconciliation, then a restart that converges with nothing bound twice.
final class ReconcilerCrashTests: XCTestCase {
    private func bench() throws -> String {
        let bundle = Bundle.main.bundleURL
        for directory in [bundle.path, bundle.deletingLastPathComponent().path,
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path] {
            let path = directory + "/bindery-bench"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw NSError(domain: "tests", code: 1, userInfo: [NSLocalizedDescriptionKey: "bindery-bench not built; run swift build first"])
    }

    /// Runs `bindery-bench reconcile`, handing each output line to `onLine` until it returns false
    /// (then SIGKILL) or the process ends. Returns the lines and how the process ended.
    private func run(_ arguments: [String], onLine: (String) -> Bool) throws -> ([String], Process.TerminationReason) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try bench())
        process.arguments = ["reconcile"] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var lines: [String] = [], buffer = Data(), killed = false
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                lines.append(line)
                if !killed && !onLine(line) {
                    kill(process.processIdentifier, SIGKILL)
                    killed = true
                }
            }
        }
        process.waitUntilExit()
        return (lines, process.terminationReason)
    }

    func testSIGKILLDuringReconciliationThenRestartConvergesWithNothingBoundTwice() throws {
        let directory = NSTemporaryDirectory() + "bindery-reconcile-crash-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // First process: binds 1,000 then every further bind fails with EBUSY; killed there.
        let (_, firstEnd) = try run(["--data-dir", directory, "--bindings", "3000", "--faults", "VFIO_IOMMU_NESTING_OP=EBUSY@after:1000",
                                     "--timeout", "60"]) { line in
            !(line.hasPrefix("bound ") && (Int(line.dropFirst(6)) ?? 0) >= 1000)
        }
        XCTAssertEqual(firstEnd, .uncaughtSignal, "killed, not finished")
        let queue = try DatabaseQueue(path: directory + "/" + Store.fileName)
        let (boundAtKill, integrity) = try queue.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM bindings WHERE phase = 'Bound'")!, try String.fetchOne(db, sql: "PRAGMA integrity_check"))
        }
        try queue.close()
        XCTAssertEqual(integrity, "ok")
        XCTAssertEqual(boundAtKill, 1000, "killed in the middle: 1,000 of 3,000 bound")

        // Second process: a fresh kernel; everything is rebuilt once.
        let (lines, secondEnd) = try run(["--data-dir", directory, "--timeout", "60"]) { _ in true }
        XCTAssertEqual(secondEnd, .exit)
        XCTAssertEqual(lines.last?.split(separator: " ").prefix(3).joined(separator: " "), "converged bindings=3000 kernel=3000",
                       "every binding bound exactly once in the new kernel")
        let reopened = try DatabaseQueue(path: directory + "/" + Store.fileName)
        try reopened.read { db in
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM bindings WHERE phase = 'Bound'"), 3000)
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM host_pasids"), 3000)
            XCTAssertEqual(try Int.fetchOne(db, sql: """
                SELECT count(*) FROM bindings b JOIN host_pasids h ON h.binding_id = b.id AND h.pasid = b.host_pasid
                """), 3000, "each binding's host PASID is the one recorded for it")
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM operations WHERE state = 'intent'"), 0)
            XCTAssertTrue(try AuditChain.verify(in: db).isValid)
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_events WHERE action = 'binding.bind' AND outcome = 'success'"),
                           4000, "1,000 binds before the crash, 3,000 rebuilt after it")
        }
    }
}
