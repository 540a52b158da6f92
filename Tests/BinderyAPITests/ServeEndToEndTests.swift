import BinderyHTTP
import Foundation
import GRDB
import XCTest

/// `bindery serve` as a separate process on a free loopback port with a fresh data dir,
/// called with curl over real TLS with real client certificates.
/// Helpers for tests that run `bindery serve` as a separate process (no tests of its own).
class EndToEndTestCase: XCTestCase, @unchecked Sendable {
    var directory: String!
    private(set) var server: Process?
    var port = 0

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "bindery-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        stopServer()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func product(_ name: String) throws -> String {
        let bundle = Bundle.main.bundleURL
        for candidate in [bundle.path, bundle.deletingLastPathComponent().path,
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path] {
            if FileManager.default.isExecutableFile(atPath: candidate + "/" + name) { return candidate + "/" + name }
        }
        throw NSError(domain: "e2e", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(name) not built; run swift build first"])
    }

    /// Runs `bindery ARGS` to completion; returns (status, stdout).
    @discardableResult
    func bindery(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try product("bindery"))
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Starts `bindery serve` on port 0 and returns what it printed on stdout before serving.
    @discardableResult
    /// `prefix` runs it under another command (`prlimit --nofile=…`).
    func startServer(_ extra: [String] = [], prefix: [String] = []) throws -> String {
        let process = Process()
        let command: [String] = prefix + [try product("bindery"), "serve", "--data-dir", directory!, "--listen", "127.0.0.1:0"] + extra
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        server = process
        var log = "", printed = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            log += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
            if let range = log.range(of: "serving https on 127.0.0.1:") {
                port = Int(log[range.upperBound...].prefix { $0.isNumber })!
                break
            }
            if !process.isRunning { XCTFail("bindery serve exited: \(log)"); return "" }
        }
        XCTAssertTrue(log.contains("kernel driver: simulated"), "the first log line names the kernel: \(log)")
        if FileManager.default.fileExists(atPath: directory + "/pki/admin.pem"), log.contains("created a development PKI") {
            while !printed.contains("/v1/host\n") && Date() < deadline {
                printed += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            }
        }
        return printed
    }

    /// SIGTERM, then up to 15 s for a graceful exit; a server that does not stop is a failure
    /// (and is killed, so a hang can never stall the suite).
    func stopServer(file: StaticString = #filePath, line: UInt = #line) {
        guard let server, server.isRunning else { return }
        kill(server.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(15)
        while server.isRunning && Date() < deadline { usleep(10_000) }
        if server.isRunning {
            XCTFail("bindery serve did not exit within 15 s of SIGTERM", file: file, line: line)
            kill(server.processIdentifier, SIGKILL)
        }
        server.waitUntilExit()
        self.server = nil
    }

    /// curl with the client certificate `name` from the development PKI.
    @discardableResult
    func curl(_ path: String, as name: String = "admin", method: String = "GET", headers: [String] = [], body: String? = nil) throws -> (status: Int, headers: String, body: String) {
        let pki = directory + "/pki"
        var arguments = ["-s", "-i", "-X", method, "--cacert", "\(pki)/ca.pem", "--cert", "\(pki)/\(name).pem", "--key", "\(pki)/\(name)-key.pem"]
        for header in headers { arguments += ["-H", header] }
        // Request bodies go outside the data dir, which a test may have filled on purpose.
        let file = NSTemporaryDirectory() + "bindery-request-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        if let body {
            try body.write(toFile: file, atomically: true, encoding: .utf8)
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@" + file]
        }
        arguments.append("https://localhost:\(port)\(path)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let split = text.range(of: "\r\n\r\n") else { return (0, "", text) }
        let head = String(text[..<split.lowerBound])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, head, String(text[split.upperBound...]))
    }

    func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

}

/// First start, roles, request ids, problems, health.
final class ServeEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    func testFirstStartMakesTheDevelopmentPKIAndItsCurlLineAnswers() throws {
        let printed = try startServer()
        for file in ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "admin.pem", "admin-key.pem"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(directory!)/pki/\(file)"), file)
        }
        let line = try XCTUnwrap(printed.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("curl ") })
        let words = line.split(separator: " ").map(String.init)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s"] + Array(words.dropFirst())
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let body = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let host = try json(body)
        XCTAssertEqual((host["kernel"] as? [String: Any])?["driver"] as? String, "simulated")
        let nesting = ((host["iommu"] as? [String: Any])?["nesting"] as? [String: Any])
        XCTAssertEqual(nesting?["supported"] as? Bool, true)
        XCTAssertEqual(nesting?["pasidBits"] as? Int, 20)
    }

    func testRolesAnUnknownIdentityIsRefusedAndTheRefusalIsAudited() throws {
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "reader1", "--role", "reader", "--data-dir", directory]).0, 0)
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "nobody", "--role", "reader", "--data-dir", directory]).0, 0)
        // Take nobody's grant away: a valid certificate whose identity has no role.
        let roles = directory + "/pki/roles.json"
        var grants = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: roles))) as! [String: String]
        XCTAssertNotNil(grants.removeValue(forKey: "uri:spiffe://bindery.local/nobody"), "grants are namespaced by identity kind")
        try JSONSerialization.data(withJSONObject: grants).write(to: URL(fileURLWithPath: roles))
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "x", "--role", "chief", "--data-dir", directory]).0, 64, "unknown role refused")

        try startServer()
        XCTAssertEqual(try curl("/v1/host", as: "reader1").status, 200)
        let refused = try curl("/v1/host", as: "nobody", headers: ["X-Request-Id: denied-1"])
        XCTAssertEqual(refused.status, 403)
        XCTAssertTrue(refused.headers.lowercased().contains("content-type: application/problem+json"))
        XCTAssertEqual(try json(refused.body)["type"] as? String, "https://bindery.dev/problems/forbidden")
        XCTAssertEqual(try curl("/healthz", as: "nobody").status, 200, "liveness needs no role")
        stopServer()

        let database = try DatabaseQueue(path: directory + "/bindery.sqlite")
        let denied = try database.read { db in
            try Row.fetchOne(db, sql: "SELECT actor_identity, request_id, http_status FROM audit_events WHERE outcome = 'denied'")
        }
        XCTAssertEqual(denied?["actor_identity"] as String?, "spiffe://bindery.local/nobody")
        XCTAssertEqual(denied?["request_id"] as String?, "denied-1")
        XCTAssertEqual(denied?["http_status"] as Int?, 403)
        let (status, verification) = try bindery(["audit", "verify", "--data-dir", directory, "--json"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(verification.contains("\"valid\":true"), verification)
    }

    func testJSONLogsStartWithTheKernelDriver() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try product("bindery"))
        process.arguments = ["serve", "--data-dir", directory, "--listen", "127.0.0.1:0", "--log-format", "json"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("serving https") && Date() < deadline && process.isRunning {
            text += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        kill(process.processIdentifier, SIGTERM)
        let deadline2 = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline2 { usleep(10_000) }
        if process.isRunning {
            XCTFail("bindery serve did not exit within 15 s of SIGTERM")
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        let first = try XCTUnwrap(text.split(separator: "\n").first)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: String])
        XCTAssertEqual(object["level"], "info")
        XCTAssertTrue(object["message"]?.hasPrefix("kernel driver: simulated") == true, "\(object)")
        XCTAssertEqual(process.terminationReason, .exit, "SIGTERM stops it gracefully")
        XCTAssertEqual(try bindery(["serve", "--log-format", "xml", "--data-dir", directory]).0, 64, "a bad setting is refused")
    }

    func testRequestIDsProblemsHealthAndReadiness() throws {
        try startServer()
        let echoed = try curl("/v1/host", headers: ["X-Request-Id: abc-123"])
        XCTAssertTrue(echoed.headers.contains("X-Request-Id: abc-123"), echoed.headers)
        let generated = try curl("/v1/host")
        XCTAssertTrue(generated.headers.contains("X-Request-Id: req-"), generated.headers)
        let missing = try curl("/v1/nothing")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(try json(missing.body)["type"] as? String, "https://bindery.dev/problems/not-found")
        let wrongMethod = try curl("/v1/host", method: "DELETE")
        XCTAssertEqual(wrongMethod.status, 405)
        XCTAssertTrue(wrongMethod.headers.contains("Allow: GET"))
        XCTAssertEqual(try json(try curl("/healthz").body)["status"] as? String, "ok")
        let ready = try curl("/readyz")
        XCTAssertEqual(ready.status, 200)
        XCTAssertEqual(try json(ready.body)["ready"] as? Bool, true)
    }
}

/// Grants are live: issuing, changing and revoking a role apply to the next request of a
/// running server, including on a connection that stays open.
final class LiveGrantEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    func testGrantChangeAndRevocationApplyToTheNextRequestWithoutRestart() throws {
        try startServer()
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "late", "--role", "reader", "--data-dir", directory]).0, 0)
        XCTAssertEqual(try curl("/v1/vms", as: "late").status, 200, "a grant written while running applies at once")
        XCTAssertEqual(try curl("/v1/vms", as: "late", method: "POST", body: #"{"name":"x"}"#).status, 403, "reader may not write")

        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "late", "--role", "operator", "--data-dir", directory]).0, 0)
        XCTAssertEqual(try curl("/v1/vms", as: "late", method: "POST", body: #"{"name":"x"}"#).status, 201, "the new role applies at once")

        let roles = directory + "/pki/roles.json"
        var grants = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: roles))) as! [String: String]
        XCTAssertNotNil(grants.removeValue(forKey: "uri:spiffe://bindery.local/late"))
        try JSONSerialization.data(withJSONObject: grants).write(to: URL(fileURLWithPath: roles), options: .atomic)
        XCTAssertEqual(try curl("/v1/vms", as: "late").status, 403, "revocation applies to the next request")
        XCTAssertEqual(try curl("/v1/vms", as: "admin").status, 200, "other grants stay")

        // Each change of the grants in force is in the audit chain.
        let deadline = Date().addingTimeInterval(20)
        var changes: [String] = []
        while Date() < deadline {
            let page = try json(try curl("/v1/audit?resourceType=grant&resourceId=uri:spiffe://bindery.local/late").body)
            changes = (page["items"] as? [[String: Any]] ?? []).map { "\($0["action"] ?? "") \($0["after"] ?? "-")" }
            if changes.count >= 3 { break }
            usleep(20_000)
        }
        XCTAssertEqual(changes, [#"grant.set {"role":"reader"}"#, #"grant.set {"role":"operator"}"#, "grant.revoke -"])
    }

    func testAGrantForACommonNameNeverMatchesAURISAN() throws {
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "uri-only", "--role", "reader", "--data-dir", directory]).0, 0)
        let roles = directory + "/pki/roles.json"
        var grants = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: roles))) as! [String: String]
        grants.removeValue(forKey: "uri:spiffe://bindery.local/uri-only")
        grants["cn:spiffe://bindery.local/uri-only"] = "admin"
        grants["dns:spiffe://bindery.local/uri-only"] = "admin"
        try JSONSerialization.data(withJSONObject: grants).write(to: URL(fileURLWithPath: roles), options: .atomic)
        try startServer()
        XCTAssertEqual(try curl("/v1/vms", as: "uri-only").status, 403, "the certificate's identity is a URI SAN; cn:/dns: grants do not apply")
    }

    func testAFloodOfDenialsFromOneIdentityIsAuditedOncePerMinute() throws {
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "flood", "--role", "reader", "--data-dir", directory]).0, 0)
        try startServer()
        for _ in 0..<20 { XCTAssertEqual(try curl("/v1/audit", as: "flood").status, 403) }
        let page = try json(try curl("/v1/audit?outcome=denied&limit=100").body)
        let denied = (page["items"] as? [[String: Any]] ?? []).filter { ($0["actor"] as? [String: Any])?["identity"] as? String == "spiffe://bindery.local/flood" }
        XCTAssertEqual(denied.count, 1, "20 refusals within a minute are one audit event")
    }
}
