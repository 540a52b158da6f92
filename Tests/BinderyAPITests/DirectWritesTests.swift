@testable import BinderyAPI
@testable import BinderyHTTP
import BinderyStore
import Foundation
import XCTest

/// The creates handed straight to their handler (`DirectWrites`) answer what the generated
/// path answers: same status, headers and body, for created, refused, conflicting and replayed
/// requests. Each pair differs only in what must differ (a name, a PASID), and the answers'
/// ids and times are taken from the direct one before the bytes are compared.
final class DirectWritesTests: XCTestCase {
    private var fixture: TransportFixture!
    private var transport: BinderyTransport { fixture.transport }

    override func setUp() async throws {
        fixture = try await TransportFixture(directWrites: true)
    }

    override func tearDown() async throws {
        await fixture.stop()
    }

    /// POSTs `body("g")` through the generated path and `body("d")` directly; checks the two
    /// answers are the same once `substitutions` and the answers' own ids and times are applied.
    private func compare(_ target: String, _ body: (String) -> String, headers: [(String, String)] = [],
                         substitutions: [(String, String)] = [], file: StaticString = #filePath, line: UInt = #line) async -> Int {
        transport.answersWritesDirectly = false
        let generated = await transport.respond(to: fixture.request("POST", target, body: body("g"), headers: headers))
        transport.answersWritesDirectly = true
        let direct = await transport.respond(to: fixture.request("POST", target, body: body("d"), headers: headers))
        var replacements = substitutions
        let fields = ["id", "createdAt", "updatedAt"]
        if let a = try? JSONSerialization.jsonObject(with: Data(generated.body)) as? [String: Any],
           let b = try? JSONSerialization.jsonObject(with: Data(direct.body)) as? [String: Any] {
            for field in fields {
                if let from = a[field] as? String, let to = b[field] as? String { replacements.append((from, to)) }
            }
        }
        func normalized(_ text: String) -> String { replacements.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) } }
        XCTAssertEqual(direct.status, generated.status, target, file: file, line: line)
        XCTAssertEqual(direct.headers.map { "\($0.name): \($0.value)" }, generated.headers.map { normalized("\($0.name): \($0.value)") },
                       target, file: file, line: line)
        XCTAssertEqual(String(decoding: direct.body, as: UTF8.self), normalized(String(decoding: generated.body, as: UTF8.self)),
                       target, file: file, line: line)
        return direct.status
    }

    private func directCount(_ operation: String, _ status: Int) -> Int {
        let prefix = #"bindery_http_requests_total{operation="\#(operation)",status="\#(status)"} "#
        return fixture.directMetrics.lines().first { $0.hasPrefix(prefix) }.map { Int($0.dropFirst(prefix.count)) ?? 0 } ?? 0
    }

    func testCreatedVMsEqualTheGeneratedOnes() async throws {
        let image = fixture.directory + "/memory/guest.img"
        XCTAssertTrue(FileManager.default.createFile(atPath: image, contents: nil))
        XCTAssertEqual(truncate(image, 8 << 20), 0)
        let bodies: [(status: Int, body: (String) -> String)] = [
            (201, { #"{"name":"web-\#($0)","labels":{"a10":"x/y","a9":"\u00e9\"\\","B":"","bf":"\b\f\u0001\u007f"},"memory":[{"guestAddress":"0x0","size":1073741824},{"guestAddress":"0x100000000","size":2097152}]}"# }),
            (201, { #"{"name":"min-\#($0)"}"# }),
            (201, { #"{"memory":[],"labels":{},"name":"empty-\#($0)"}"# }),
            (201, { #"{"name":"big-\#($0)","memory":[{"guestAddress":"0xfffffffff000","size":4096}]}"# }),
            (201, { #"{"name":"backed-\#($0)","memory":[{"guestAddress":"0x0","size":2097152,"backing":{"path":"\#(image)","offset":4096}}]}"# }),
            (201, { #"{"name":"one-e3-\#($0)","memory":[{"guestAddress":"0x0","size":4.096e3}]}"# }),
            // Refused by the handler's own rules, after the contract's checks passed.
            (422, { #"{"name":"outside-\#($0)","memory":[{"guestAddress":"0x0","size":4096,"backing":{"path":"/etc/passwd"}}]}"# }),
            (422, { #"{"name":"overlap-\#($0)","memory":[{"guestAddress":"0x0","size":8192},{"guestAddress":"0x1000","size":4096}]}"# }),
            (422, { #"{"name":"past-\#($0)","memory":[{"guestAddress":"0x0","size":4096,"backing":{"path":"\#(image)","offset":8388608}}]}"# }),
            // Refused by the contract's checks before either path.
            (422, { #"{"name":"UPPER-\#($0)"}"# }),
            (422, { #"{"name":"null-\#($0)","labels":null}"# }),
            (400, { _ in #"{"name":"# }),
        ]
        for (status, body) in bodies {
            let answered = await compare("/v1/vms", body, substitutions: [("-g\"", "-d\"")])
            XCTAssertEqual(answered, status, body("d"))
        }
        // The same name twice: the second create conflicts on both paths.
        _ = try await fixture.created("/v1/vms", #"{"name":"taken"}"#)
        let conflict = await compare("/v1/vms", { _ in #"{"name":"taken"}"# })
        XCTAssertEqual(conflict, 409)
        XCTAssertEqual(directCount("createVM", 201), 7, "every create the checks passed ran directly (one was the setup)")
        XCTAssertEqual(directCount("createVM", 422), 3)
        XCTAssertEqual(directCount("createVM", 409), 1)

        // An Accept that is not plainly JSON leaves the write to the generated path.
        let accepts = await compare("/v1/vms", { #"{"name":"accept-\#($0)"}"# }, headers: [("Accept", "application/json; charset=utf-8")],
                                    substitutions: [("-g\"", "-d\"")])
        XCTAssertEqual(accepts, 201)
        XCTAssertEqual(directCount("createVM", 201), 7)
        // Accept headers the generated code refuses as malformed are refused on both paths, nothing created.
        for accept in ["application/json;q=2", "application/json, */json", "application/json;q=-0.5", "application/json;q=nan"] {
            let refused = await compare("/v1/vms", { #"{"name":"malformed-accept-\#($0)"}"# }, headers: [("Accept", accept)],
                                        substitutions: [("-g\"", "-d\"")])
            XCTAssertEqual(refused, 400, accept)
        }
        XCTAssertEqual(directCount("createVM", 201), 7)
        let listed = await transport.respond(to: fixture.request("GET", "/v1/vms?limit=1000"))
        XCTAssertFalse(String(decoding: listed.body, as: UTF8.self).contains("malformed-accept"), "a refused request created nothing")
    }

    func testCreatedBindingsEqualTheGeneratedOnes() async throws {
        let vm = try await fixture.created("/v1/vms", #"{"name":"host","memory":[{"guestAddress":"0x0","size":1073741824}]}"#)
        let other = try await fixture.created("/v1/vms", #"{"name":"other"}"#)
        let assigned = await transport.respond(to: fixture.request("PUT", "/v1/vms/\(vm)/devices/0000:3b:00.0", body: #"{"managed":true}"#))
        XCTAssertEqual(assigned.status, 202, String(decoding: assigned.body, as: UTF8.self))
        await fixture.reconciler.waitUntilIdle()
        func pasid(_ tag: String, _ base: Int) -> Int { tag == "g" ? base : base + 1 }
        let cases: [(status: Int, base: Int, body: (String) -> String)] = [
            (202, 10, { #"{"vm":"\#(vm)","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":\#(pasid($0, 10)),"format":"intel-vtd","version":1,"pageTable":{"address":"0x1000","addressWidth":48},"vtd":{"sre":true,"pat":7}}"# }),
            (202, 20, { #"{"vm":"\#(vm)","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":\#(pasid($0, 20)),"hostPasid":\#(pasid($0, 20) + 100),"format":"intel-vtd","version":1,"pageTable":{"address":"0x2000","addressWidth":57},"vtd":{"sre":false,"eafe":true,"pcd":true,"pwt":false,"emte":true,"cd":false,"pat":4294967295,"emt":0}}"# }),
            // Refused by the handler: not this VM's device, a page table outside guest memory.
            (422, 30, { #"{"vm":"\#(other)","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":\#(pasid($0, 30)),"format":"intel-vtd","version":1,"pageTable":{"address":"0x1000","addressWidth":48}}"# }),
            (422, 40, { #"{"vm":"\#(vm)","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":\#(pasid($0, 40)),"format":"intel-vtd","version":1,"pageTable":{"address":"0x80000000000","addressWidth":48}}"# }),
            (422, 50, { #"{"vm":"vm-00000000000000000000000000000000","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":\#(pasid($0, 50)),"format":"intel-vtd","version":1,"pageTable":{"address":"0x1000","addressWidth":48}}"# }),
        ]
        for (status, base, body) in cases {
            let answered = await compare("/v1/bindings", body, substitutions: [("\"guestPasid\":\(base)", "\"guestPasid\":\(base + 1)"),
                                                                                ("\"hostPasid\":\(base + 100)", "\"hostPasid\":\(base + 101)")])
            XCTAssertEqual(answered, status, body("d"))
        }
        // The same guest PASID again conflicts on both paths.
        let again = await compare("/v1/bindings", { _ in #"{"vm":"\#(vm)","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":11,"format":"intel-vtd","version":1,"pageTable":{"address":"0x1000","addressWidth":48}}"# })
        XCTAssertEqual(again, 409)
        XCTAssertEqual(directCount("createBinding", 202), 2)
    }

    /// `Idempotency-Key` wraps the direct run as it wraps the generated one: the same key and
    /// body replay the first answer; a different body is 422.
    func testIdempotencyKeysReplayDirectCreates() async throws {
        let body = #"{"name":"once","labels":{"k":"v"}}"#
        let first = await transport.respond(to: fixture.request("POST", "/v1/vms", body: body, headers: [("Idempotency-Key", "key-1")]))
        XCTAssertEqual(first.status, 201)
        let replay = await transport.respond(to: fixture.request("POST", "/v1/vms", body: body, headers: [("Idempotency-Key", "key-1")]))
        XCTAssertEqual(replay.status, 201)
        XCTAssertEqual(replay.body, first.body)
        XCTAssertTrue(replay.headers.contains { $0 == ("Idempotent-Replayed", "true") })
        let reused = await transport.respond(to: fixture.request("POST", "/v1/vms", body: #"{"name":"twice"}"#, headers: [("Idempotency-Key", "key-1")]))
        XCTAssertEqual(reused.status, 422)
        XCTAssertEqual(directCount("createVM", 201), 1, "the create ran once, directly")
        // A caller who may not create is refused before any path runs.
        let refused = await transport.respond(to: fixture.request("POST", "/v1/vms", body: #"{"name":"nope"}"#, peer: TransportFixture.reader))
        XCTAssertEqual(refused.status, 403)
        XCTAssertEqual(directCount("createVM", 201), 1, "the refused create ran on no path")
        let listed = await transport.respond(to: fixture.request("GET", "/v1/vms?limit=1000"))
        XCTAssertFalse(String(decoding: listed.body, as: UTF8.self).contains(#""name":"nope""#))
    }
}
