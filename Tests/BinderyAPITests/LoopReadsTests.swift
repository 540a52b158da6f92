@testable import BinderyAPI
@testable import BinderyHTTP
import BinderyReconciler
import BinderyStore
import Foundation
import XCTest

/// The reads answered on the event loop give, byte for byte, what the generated path gives:
/// same status, headers and body, for found, missing, paged, filtered and invalid requests.
final class LoopReadsTests: XCTestCase {
    private var fixture: TransportFixture!
    private var directory: String { fixture.directory }
    private var store: Store { fixture.store }
    private var reconciler: Reconciler { fixture.reconciler }
    private var transport: BinderyTransport { fixture.transport }
    /// Counts only the requests answered by `LoopReads` (the generated path has no middleware here).
    private var directMetrics: RequestMetrics { fixture.directMetrics }
    private let admin = TransportFixture.admin

    override func setUp() async throws {
        fixture = try await TransportFixture(directWrites: false)
    }

    override func tearDown() async throws {
        await fixture.stop()
    }

    private func request(_ method: String, _ target: String, body: String? = nil, headers: [(String, String)] = [],
                         peer: PeerInfo? = nil) -> BinderyHTTP.HTTPRequest {
        fixture.request(method, target, body: body, headers: headers, peer: peer)
    }

    private func created(_ target: String, _ body: String) async throws -> String {
        try await fixture.created(target, body)
    }

    func testLoopAnswersEqualTheGeneratedOnes() async throws {
        var vms: [String] = []
        for index in 0..<7 {
            vms.append(try await created("/v1/vms", #"{"name":"vm-\#(index)","labels":{"a10":"x/y","a9":"\u00e9\"\\","B":"","bf":"\b\f\u0001\u007f"},"memory":[{"guestAddress":"0x0","size":1073741824},{"guestAddress":"0x100000000","size":2097152}]}"#))
        }
        // A VM with a backing file, held by a VMM: the writers' optional members.
        let image = directory + "/memory/guest.img"
        XCTAssertTrue(FileManager.default.createFile(atPath: image, contents: nil))
        XCTAssertEqual(truncate(image, 8 << 20), 0)
        let backed = try await created("/v1/vms", #"{"name":"backed","memory":[{"guestAddress":"0x0","size":2097152,"backing":{"path":"\#(image)","offset":4096}},{"guestAddress":"0x200000","size":4096}]}"#)
        vms.append(backed)
        try await store.write { db in
            let issued = try AttachmentRepository.issue(vmID: backed, lifetime: 60, actor: AuditActor(identity: "spiffe://test/admin"), in: db)
            _ = try AttachmentRepository.redeem(token: issued.token, vmID: backed, pid: getpid(), uid: getuid(), gid: getgid(),
                                                isAlive: { _ in true }, in: db)
        }
        let assigned = await transport.respond(to: request("PUT", "/v1/vms/\(vms[0])/devices/0000:3b:00.0", body: #"{"managed":true}"#))
        XCTAssertEqual(assigned.status, 202, String(decoding: assigned.body, as: UTF8.self))
        let binding = try await created("/v1/bindings", #"{"vm":"\#(vms[0])","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":5,"format":"intel-vtd","version":1,"pageTable":{"address":"0x1000","addressWidth":48},"vtd":{"sre":true,"pat":7}}"#)
        let second = try await created("/v1/bindings", #"{"vm":"\#(vms[0])","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":6,"hostPasid":77,"format":"intel-vtd","version":1,"pageTable":{"address":"0x2000","addressWidth":57}}"#)
        await reconciler.waitUntilIdle()

        let targets = [
            "/healthz", "/v1/vms/\(vms[0])", "/v1/vms/\(vms[3])", "/v1/vms/\(backed)", "/v1/vms?limit=1000", "/v1/vms/vm-missing", "/v1/vms/x%20y", "/v1/bindings/\(binding)",
            "/v1/bindings/\(second)", "/v1/bindings/bnd-missing", "/v1/vms", "/v1/vms?limit=3", "/v1/vms?limit=3&after=\(vms[2])",
            "/v1/vms?limit=0", "/v1/vms?limit=1001", "/v1/vms?limit=abc", "/v1/vms?limit=2&limit=3", "/v1/vms?limit=1e1",
            "/v1/vms?unknown=1", "/v1/vms?limit=101", "/v1/bindings", "/v1/bindings?vm=\(vms[0])", "/v1/bindings?device=0000:3b:00.0&limit=1",
            "/v1/bindings?vm=\(vms[1])", "/v1/bindings?after=\(binding)", "//v1//vms//\(vms[1])",
        ]
        var answeredOnLoop = 0
        for target in targets {
            for headers in [[], [("Accept", "application/json")], [("Accept", "text/plain")]] {
                let slow = await transport.respond(to: request("GET", target, headers: headers))
                guard let fast = transport.respondImmediately(to: request("GET", target, headers: headers)) else { continue }
                answeredOnLoop += 1
                XCTAssertEqual(fast.status, slow.status, target)
                XCTAssertEqual(fast.headers.map { "\($0.name): \($0.value)" }, slow.headers.map { "\($0.name): \($0.value)" }, target)
                XCTAssertEqual(String(decoding: fast.body, as: UTF8.self), String(decoding: slow.body, as: UTF8.self), target)
            }
        }
        XCTAssertGreaterThan(answeredOnLoop, 30, "most plain reads are answered on the loop")
        XCTAssertTrue(directMetrics.lines().contains { $0.hasPrefix(#"bindery_http_requests_total{operation="getBinding",status="200"}"#) })
        let held = String(decoding: try XCTUnwrap(transport.respondImmediately(to: request("GET", "/v1/vms/\(backed)"))).body, as: UTF8.self)
        XCTAssertTrue(held.contains(#""vmm":{"issuer":"#) && held.contains(#""backing":{"offset":4096"#), held)
        XCTAssertNil(transport.respondImmediately(to: request("GET", "/v1/vms?limit=2&limit=3")), "a repeated key takes the generated path")
        XCTAssertNil(transport.respondImmediately(to: request("GET", "/v1/vms/\(vms[0])", headers: [("Accept", "text/plain")])))
        XCTAssertNil(transport.respondImmediately(to: request("POST", "/v1/vms", body: "{}")), "writes never run on the loop")
        XCTAssertNil(transport.respondImmediately(to: request("GET", "/v1/audit")), "the audit history is not a loop read")
        let reader = PeerInfo(identity: "spiffe://test/reader", certificateFingerprint: "", remoteAddress: "127.0.0.1:3", identityKind: .uri)
        XCTAssertEqual(transport.respondImmediately(to: request("GET", "/v1/bindings/\(binding)", peer: reader))?.status, 200,
                       "a reader reads on the loop")
        let stranger = PeerInfo(identity: "nobody", certificateFingerprint: "", remoteAddress: "127.0.0.1:2")
        XCTAssertNil(transport.respondImmediately(to: request("GET", "/v1/vms", peer: stranger)),
                     "a caller without a role takes the generated path, which records the denial")
    }

    func testAuditPagesEqualTheGeneratedOnes() async throws {
        for index in 0..<5 {
            _ = try await created("/v1/vms", #"{"name":"audited-\#(index)","labels":{"k":"v/\#(index)"},"memory":[{"guestAddress":"0x0","size":1073741824}]}"#)
        }
        _ = await transport.respond(to: request("GET", "/v1/vms", peer: PeerInfo(identity: "nobody", certificateFingerprint: "", remoteAddress: "127.0.0.1:2")))
        await reconciler.waitUntilIdle()
        let targets = [
            "/v1/audit", "/v1/audit?limit=2", "/v1/audit?limit=2&after=3", "/v1/audit?action=vm.create", "/v1/audit?resourceType=vm&after=1",
            "/v1/audit?actor=spiffe%3A%2F%2Ftest%2Fadmin", "/v1/audit?actor=spiffe://test/admin&limit=3", "/v1/audit?outcome=denied",
            "/v1/audit?outcome=failed", "/v1/audit?outcome=bogus", "/v1/audit?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00.5%2B01:00",
            "/v1/audit?since=2000-01-01T00:00:00Z", "/v1/audit?after=-1", "/v1/audit?limit=0", "/v1/audit?limit=5&limit=6",
            "/v1/audit?resourceId=missing", "/v1/audit?after=1e2",
        ]
        var compared = 0
        for target in targets {
            for headers in [[], [("Accept", "application/json")], [("Accept", "*/*")]] {
                transport.answersReadsDirectly = false
                let generated = await transport.respond(to: request("GET", target, headers: headers))
                transport.answersReadsDirectly = true
                let pooled = await transport.respond(to: request("GET", target, headers: headers))
                XCTAssertEqual(pooled.status, generated.status, target)
                XCTAssertEqual(pooled.headers.map { "\($0.name): \($0.value)" }, generated.headers.map { "\($0.name): \($0.value)" }, target)
                XCTAssertEqual(String(decoding: pooled.body, as: UTF8.self), String(decoding: generated.body, as: UTF8.self), target)
                compared += 1
            }
        }
        XCTAssertEqual(compared, targets.count * 3)
        XCTAssertTrue(directMetrics.lines().contains { $0.hasPrefix(#"bindery_http_requests_total{operation="listAuditEvents",status="200"}"#) },
                      "audit pages were answered by the pool read")
    }

    func testHandWrittenScalarsAndConditionsEqualTheGeneratedEncoding() throws {
        let conditions = [
            Condition(type: .ready, status: true, reason: .contextOpen, message: "plain"),
            Condition(type: .bound, status: false, reason: .kernelError, message: "quote \" backslash \\ tab \t bell \u{7} \u{8}\u{c} é ✓"),
            { var odd = Condition(type: .attached, status: true, reason: .attached, message: "", at: "not a time"); odd.status = "Maybe"; return odd }(),
            { var unknown = Condition(type: .present, status: true, reason: .present, message: "/path/ok", at: "2026-12-04T18:00:00.5Z")
              unknown.status = "Unknown"; return unknown }(),
        ]
        for count in 0...conditions.count {
            let some = Array(conditions.prefix(count))
            var written: [UInt8] = []
            BindingJSON.appendConditions(some, to: &written)
            let generated = try CompactJSONEncoder.encode(Representation.status(phase: .pending, observedGeneration: 0, conditions: some).conditions)
            XCTAssertEqual(String(decoding: written, as: UTF8.self), String(decoding: generated, as: UTF8.self))
        }
        // Stored times are copied when canonical; that must be what parsing and formatting writes.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50_000 {
            // Any time from 1900 to 2200 (the canonical years), and any before or after.
            let inRange = Int64.random(in: -2_208_988_800_000...7_258_118_399_999, using: &generator)
            let text = Timestamp.format(Date(timeIntervalSince1970: Double(inRange) / 1000 + Double.random(in: 0..<0.001, using: &generator)))
            XCTAssertTrue(Timestamp.isCanonical(text), text)
            XCTAssertEqual(Timestamp.format(Timestamp.parse(text)!), text)
            let outside = Int64.random(in: -62_167_219_200_000...253_402_300_799_999, using: &generator)
            let far = Timestamp.format(Date(timeIntervalSince1970: Double(outside) / 1000))
            var written: [UInt8] = []
            XCTAssertTrue(JSONBytes.timestamp(far, &written))
            XCTAssertEqual(written, Array(("\"" + Timestamp.format(Timestamp.parse(far)!) + "\"").utf8), far)
        }
        for text in ["2026-12-04T18:00:00Z", "2026-12-04T18:00:00.12Z", "2026-12-04t18:00:00.123Z", "2026-02-30T00:00:00.000Z",
                     "2026-12-04T18:00:60.000Z", "2026-12-04T24:00:00.000Z", "2026-12-04T18:00:00.123+00:00", "2026-13-04T18:00:00.000Z"] {
            XCTAssertFalse(Timestamp.isCanonical(text), text)
            var copied: [UInt8] = []
            let written = JSONBytes.timestamp(text, &copied)
            XCTAssertEqual(written, Timestamp.parse(text) != nil, text)
            if let date = Timestamp.parse(text) { XCTAssertEqual(copied, Array(("\"" + Timestamp.format(date) + "\"").utf8), text) }
        }
        for value: Int64 in [0, 1, 9, 10, 99, 100, 12345, -1, -10, -987654321, .max, .min] {
            var out: [UInt8] = []
            JSONBytes.number(value, &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), String(value))
        }
        for value: UInt64 in [0, 1, 0xf, 0x10, 0xdead_beef, 1 << 32, .max] {
            var out: [UInt8] = []
            JSONBytes.hex(value, &out)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), "\"" + Representation.hex(value) + "\"")
        }
        for text in ["", "vm-0c9e", "with \"quote\"", "ctl \u{1}\u{1f}", "\u{7f} del stays", "ünïcödé"] {
            var out: [UInt8] = []
            JSONBytes.string(text, &out)
            XCTAssertEqual(out, Array(try CompactJSONEncoder.encode(text)), text)
        }
    }

    func testEncoderWritesWhatJSONEncoderWrites() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.format(date))
        }
        struct Sample: Encodable {
            var text = "a/b \"q\" \\ \u{1}\u{1f}\u{7f} é \u{2028} 😀"
            var numbers: [Int64] = [0, -1, 9, 10, Int64.max, Int64.min]
            var doubles: [Double] = [0, 1.5, -2, 1e20, 0.1, 123456789.25]
            var flags = [true, false]
            var missing: String?
            var present: String? = "x"
            var date = Date(timeIntervalSince1970: 1_764_000_000.123)
            var nested = ["zeta": ["b": 1, "a": 2], "alpha": [:], "Beta": ["é": 3, "e": 4, "a10": 5, "a9": 6]]
            var empty: [String] = []
        }
        XCTAssertEqual(String(decoding: try CompactJSONEncoder.encode(Sample()), as: UTF8.self),
                       String(decoding: try encoder.encode(Sample()), as: UTF8.self))
    }
}
