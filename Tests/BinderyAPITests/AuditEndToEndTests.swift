import BinderyStore
import Foundation
import XCTest

/// The audit history and the change feed over the API.
final class AuditEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    func testAuditFiltersPagesNDJSONAndVerify() throws {
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "auditor1", "--role", "auditor", "--data-dir", directory]).0, 0)
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "reader1", "--role", "reader", "--data-dir", directory]).0, 0)
        try startServer()
        for n in 0..<3 {
            XCTAssertEqual(try curl("/v1/vms", method: "POST", headers: ["X-Request-Id: make-\(n)"], body: #"{"name":"audited-\#(n)"}"#).status, 201)
        }
        XCTAssertEqual(try curl("/v1/audit", as: "reader1").status, 403, "a reader cannot read the audit history")

        let page = try json(try curl("/v1/audit?action=vm.create&limit=2", as: "auditor1").body)
        let items = page["items"] as? [[String: Any]] ?? []
        XCTAssertEqual(items.count, 2)
        XCTAssertEqual((items[0]["actor"] as? [String: Any])?["identity"] as? String, "spiffe://bindery.local/admin")
        XCTAssertEqual((items[0]["actor"] as? [String: Any])?["role"] as? String, "admin")
        XCTAssertEqual(items[0]["requestId"] as? String, "make-0")
        let cursor = try XCTUnwrap(page["nextCursor"] as? Int)
        let rest = try json(try curl("/v1/audit?action=vm.create&after=\(cursor)", as: "auditor1").body)["items"] as? [[String: Any]] ?? []
        XCTAssertEqual(rest.map { $0["requestId"] as? String }, ["make-2"])
        let denied = try json(try curl("/v1/audit?outcome=denied", as: "auditor1").body)["items"] as? [[String: Any]] ?? []
        XCTAssertEqual(denied.map { ($0["actor"] as? [String: Any])?["identity"] as? String }, ["spiffe://bindery.local/reader1"])

        let stream = try curl("/v1/audit?resourceType=vm", as: "auditor1", headers: ["Accept: application/x-ndjson"])
        XCTAssertTrue(stream.headers.lowercased().contains("content-type: application/x-ndjson"), stream.headers)
        let lines = stream.body.split(separator: "\n")
        XCTAssertGreaterThanOrEqual(lines.count, 3)
        for line in lines { XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(line.utf8))) }

        for accept in ["Accept:", "Accept: */*", "Accept: application/x-ndjson;q=0.5, application/json"] {
            let page = try curl("/v1/audit?resourceType=vm&limit=1", as: "auditor1", headers: [accept])
            XCTAssertTrue(page.headers.lowercased().contains("content-type: application/json"), "\(accept): \(page.headers)")
            XCTAssertEqual((try json(page.body)["items"] as? [Any])?.count, 1, accept)
        }

        let verification = try json(try curl("/v1/audit/verify", as: "auditor1").body)
        XCTAssertEqual(verification["valid"] as? Bool, true)
        XCTAssertGreaterThanOrEqual(verification["events"] as? Int ?? 0, 4)
        XCTAssertEqual(try curl("/v1/audit?limit=5000", as: "auditor1").status, 422)
    }

    /// An export larger than any response buffer (the old one stopped at 64 MiB) streams whole,
    /// at flat server memory, and resumes with `after`.
    func testNDJSONExportStreamsPastTheResponseBufferAtFlatMemory() async throws {
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "auditor1", "--role", "auditor", "--data-dir", directory]).0, 0)
        let events = 6000, payload = String(repeating: "p", count: 6 * 1024)  // 12 KiB an event: 72 MiB
        do {
            let store = try Store(dataDirectory: directory)
            for batch in stride(from: 0, to: events, by: 500) {
                try await store.write { [payload] db in
                    for n in batch..<(batch + 500) {
                        _ = try AuditChain.append(AuditRecord(actor: AuditActor(identity: "spiffe://test/bulk"), action: "vm.update",
                                                              resourceType: "vm", resourceID: "vm-\(n)", outcome: .success,
                                                              before: payload, after: payload), in: db)
                    }
                }
            }
        }
        try startServer()
        let pid = try XCTUnwrap(server?.processIdentifier)
        let before = try Self.memory(of: pid)
        let export = try curl("/v1/audit?resourceType=vm", as: "auditor1", headers: ["Accept: application/x-ndjson"])
        XCTAssertEqual(export.status, 200)
        XCTAssertTrue(export.headers.lowercased().contains("transfer-encoding: chunked"), export.headers)
        let lines = export.body.split(separator: "\n")
        XCTAssertEqual(lines.count, events)
        XCTAssertGreaterThan(export.body.utf8.count, 64 << 20)
        let seqs = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["seq"] as? Int }
        XCTAssertEqual(seqs, Array(seqs.first!..<(seqs.first! + events)), "every event once, in order")
        let after = try Self.memory(of: pid)
        XCTAssertLessThan(after.peak - before.resident, 64 << 20, "the server's peak RSS grew by \((after.peak - before.resident) >> 20) MiB")

        let resumed = try curl("/v1/audit?resourceType=vm&after=\(seqs[events - 101])", as: "auditor1", headers: ["Accept: application/x-ndjson"])
        let resumedSeqs = resumed.body.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["seq"] as? Int
        }
        XCTAssertEqual(resumedSeqs, Array(seqs.suffix(100)), "after resumes just past the seq given")
    }

    /// Checkpoints over the API: signed on request and at shutdown, listed for export, counted by
    /// verification; a tail cut from the database after them makes verification fail.
    func testSignedCheckpointsAreExportedAndCatchACutTail() async throws {
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "auditor1", "--role", "auditor", "--data-dir", directory]).0, 0)
        try startServer()
        for n in 0..<3 {
            XCTAssertEqual(try curl("/v1/vms", method: "POST", body: #"{"name":"signed-\#(n)"}"#).status, 201)
        }
        let created = try curl("/v1/audit/checkpoints", as: "auditor1", method: "POST")
        XCTAssertEqual(created.status, 200, created.body)
        let checkpoint = try json(created.body)
        let seq = try XCTUnwrap(checkpoint["seq"] as? Int)
        XCTAssertEqual((checkpoint["publicKey"] as? String)?.count, 64)
        XCTAssertEqual((checkpoint["signature"] as? String)?.count, 128)
        let listed = try json(try curl("/v1/audit/checkpoints", as: "auditor1").body)["items"] as? [[String: Any]] ?? []
        XCTAssertEqual(listed.last?["seq"] as? Int, seq)
        XCTAssertEqual(try curl("/v1/audit/checkpoints", as: "admin", method: "POST").status, 200)
        let verified = try json(try curl("/v1/audit/verify", as: "auditor1").body)
        XCTAssertEqual(verified["valid"] as? Bool, true)
        XCTAssertGreaterThanOrEqual(verified["checkpoints"] as? Int ?? 0, 1)

        XCTAssertEqual(try curl("/v1/vms", method: "POST", body: #"{"name":"last"}"#).status, 201)
        stopServer()  // signs the head once more
        let store = try Store(dataDirectory: directory)
        let head = try await store.read { db in try AuditCheckpoints.latest(in: db)?.seq ?? 0 }
        XCTAssertGreaterThan(head, seq, "a checkpoint signed at shutdown covers the last change")
        try await store.pool.write { db in
            try db.execute(sql: "DROP TRIGGER audit_events_no_delete")
            try db.execute(sql: "DELETE FROM audit_events WHERE seq > ?", arguments: [head - 1])
        }
        let (status, output) = try bindery(["audit", "verify", "--data-dir", directory])
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("truncated"), output)
    }

    /// VmRSS and VmHWM of `pid`, in bytes.
    static func memory(of pid: Int32) throws -> (resident: Int, peak: Int) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    func testTheOperatorsFeedCarriesResourceChangesOnly() throws {
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "orchestrator", "--role", "operator", "--data-dir", directory]).0, 0)
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "reader1", "--role", "reader", "--data-dir", directory]).0, 0)
        try startServer()
        XCTAssertEqual(try curl("/v1/vms", as: "orchestrator", method: "POST", body: #"{"name":"watched"}"#).status, 201)
        XCTAssertEqual(try curl("/v1/audit", as: "reader1").status, 403, "a denial, which is no resource change")
        XCTAssertEqual(try curl("/v1/audit", as: "orchestrator").status, 403, "operators do not read the audit history")
        let feed = try curl("/v1/events?after=0&timeoutSeconds=0", as: "orchestrator")
        XCTAssertEqual(feed.status, 200)
        let items = try json(feed.body)["items"] as? [[String: Any]] ?? []
        let created = try XCTUnwrap(items.first { $0["action"] as? String == "vm.create" })
        XCTAssertEqual(Set(created.keys), ["seq", "time", "action", "resourceType", "resourceId", "outcome", "resourceVersion"])
        XCTAssertEqual(created["resourceVersion"] as? Int, 1)
        for item in items {
            XCTAssertNil(item["actor"]); XCTAssertNil(item["before"]); XCTAssertNil(item["after"]); XCTAssertNil(item["hash"]); XCTAssertNil(item["prevHash"])
            XCTAssertNotEqual(item["outcome"] as? String, "denied")
        }
        XCTAssertFalse(feed.body.contains("127.0.0.1"), "no peer addresses in the feed")
    }

    func testLongPollWakesWhenANewerEventCommits() throws {
        try startServer()
        XCTAssertEqual(try curl("/v1/vms", method: "POST", body: #"{"name":"first"}"#).status, 201)
        let head = try json(try curl("/v1/events?after=0&timeoutSeconds=0").body)["nextCursor"] as! Int
        XCTAssertGreaterThan(head, 0)
        let empty = try json(try curl("/v1/events?after=\(head + 1000)&timeoutSeconds=1").body)
        XCTAssertEqual((empty["items"] as? [Any])?.count, 0, "an empty page when the timeout passes")

        // A watcher waiting 60 s returns as soon as a write commits, not at its timeout.
        let answered = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var watched: [[String: Any]] = []
        DispatchQueue.global().async {
            if let body = try? self.curl("/v1/events?after=\(head)&timeoutSeconds=60").body,
               let page = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] {
                watched = page["items"] as? [[String: Any]] ?? []
            }
            answered.signal()
        }
        // Write only once the watcher is parked in the server (a state, not a sleep).
        let deadline = Date().addingTimeInterval(20)
        while !(try curl("/metrics").body.contains(#"bindery_http_requests_in_flight{operation="watchEvents"} 1"#)) {
            if Date() > deadline { return XCTFail("the long-poll never reached the server") }
            usleep(10_000)
        }
        XCTAssertEqual(try curl("/v1/vms", method: "POST", body: #"{"name":"second"}"#).status, 201)
        XCTAssertEqual(answered.wait(timeout: .now() + 30), .success, "the long-poll woke on the commit")
        XCTAssertTrue(watched.contains { $0["action"] as? String == "vm.create" }, "\(watched)")
    }
}

/// The operational endpoints: the contract and the metrics.
final class OperationsEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    func testServesItsContractAndPrometheusMetrics() throws {
        try startServer()
        let spec = try curl("/v1/openapi.yaml")
        XCTAssertEqual(spec.status, 200)
        XCTAssertTrue(spec.headers.lowercased().contains("content-type: application/yaml"))
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let onDisk = try String(contentsOf: repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        XCTAssertEqual(spec.body.trimmingCharacters(in: .whitespacesAndNewlines), onDisk.trimmingCharacters(in: .whitespacesAndNewlines),
                       "the served contract is the one in the repository")

        XCTAssertEqual(try curl("/v1/vms", method: "POST", body: #"{"name":"metered"}"#).status, 201)
        XCTAssertEqual(try curl("/v1/vms/vm-00000000000000000000000000000000").status, 404)
        let metrics = try curl("/metrics")
        XCTAssertEqual(metrics.status, 200)
        let text = metrics.body
        XCTAssertTrue(text.contains(#"bindery_http_requests_total{operation="createVM",status="201"} 1"#), text)
        XCTAssertTrue(text.contains(#"bindery_http_requests_total{operation="getVM",status="404"} 1"#), text)
        XCTAssertTrue(text.contains(#"bindery_http_request_duration_seconds_count{operation="createVM",status="201"} 1"#))
        XCTAssertTrue(text.contains("bindery_audit_head_seq "), text)
        // The reconciler accepts the VM asynchronously: wait for its counter to appear.
        let deadline = Date().addingTimeInterval(10)
        var reconciled = text
        while !reconciled.contains(#"bindery_reconcile_total{kind="vm",outcome="success"} 1"#) && Date() < deadline {
            usleep(20_000)
            reconciled = try curl("/metrics").body
        }
        XCTAssertTrue(reconciled.contains(#"bindery_reconcile_total{kind="vm",outcome="success"} 1"#), reconciled)
    }
}
