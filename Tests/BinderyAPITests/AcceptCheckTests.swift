@testable import BinderyAPI
@testable import BinderyHTTP
import BinderyStore
import Foundation
import XCTest

/// An Accept admitting none of an operation's media types is refused (406) before its handler
/// runs, on every operation and on both write paths: nothing is created, nothing answers 500.
final class AcceptCheckTests: XCTestCase {
    private var fixture: TransportFixture!
    private var transport: BinderyTransport { fixture.transport }

    override func setUp() async throws {
        fixture = try await TransportFixture(directWrites: true)
    }

    override func tearDown() async throws {
        await fixture.stop()
    }

    /// The answer the server would give: on the loop when the transport takes it there, else through `respond`.
    private func answer(_ method: String, _ target: String, body: String? = nil, accept: String?) async -> BinderyHTTP.HTTPResponse {
        let request = fixture.request(method, target, body: body, headers: accept.map { [("Accept", $0)] } ?? [])
        if let immediate = transport.respondImmediately(to: request) { return immediate }
        return await transport.respond(to: request)
    }

    private func text(_ response: BinderyHTTP.HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    func testACreateRefusedByItsAcceptStoresNothingOnEitherPath() async throws {
        for direct in [true, false] {
            transport.answersWritesDirectly = direct
            for accept in ["text/plain", "application/yaml, text/*", "image/*;q=1"] {
                let refused = await answer("POST", "/v1/vms", body: #"{"name":"refused-\#(direct)"}"#, accept: accept)
                XCTAssertEqual(refused.status, 406, "\(accept): \(text(refused))")
                XCTAssertTrue(text(refused).contains("application/json"), text(refused))
                XCTAssertTrue(refused.headers.contains { $0.name == "Content-Type" && $0.value == "application/problem+json" })
            }
            let accepted = await answer("POST", "/v1/vms", body: #"{"name":"accepted-\#(direct)"}"#, accept: "text/plain, application/*;q=0.2")
            XCTAssertEqual(accepted.status, 201, text(accepted))
        }
        let listed = text(await answer("GET", "/v1/vms?limit=1000", accept: nil))
        XCTAssertFalse(listed.contains("refused-"), "a refused create stored its VM: \(listed)")
        XCTAssertTrue(listed.contains("accepted-true") && listed.contains("accepted-false"), listed)
    }

    func testReadsAnswerWhatTheirAcceptAdmits() async throws {
        let cases: [(String, String?, Int)] = [
            ("/v1/vms", "application/yaml", 406), ("/v1/vms", "*/*", 200), ("/v1/vms", "application/*", 200),
            ("/v1/vms", "text/html, application/json;q=0.1", 200), ("/v1/vms", "", 200), ("/v1/vms", nil, 200),
            ("/v1/vms", "garbage", 400), ("/healthz", "text/plain", 406), ("/v1/openapi.yaml", "application/json", 406),
            ("/v1/openapi.yaml", "application/yaml", 200), ("/metrics", "application/json", 406), ("/metrics", "text/*", 200),
            ("/v1/audit", "application/x-ndjson", 200), ("/v1/audit", "application/json", 200), ("/v1/audit", "text/csv", 406),
            ("/v1/vms/vm-00000000000000000000000000000000", "text/plain", 406),
        ]
        for (target, accept, status) in cases {
            let response = await answer("GET", target, accept: accept)
            XCTAssertEqual(response.status, status, "\(target) with Accept \(accept ?? "(none)"): \(text(response))")
        }
    }

    /// The audit listing answers with a type its Accept admits, by the serializer's rule: NDJSON
    /// when JSON is not admitted or asked for below it, JSON otherwise; never a 500.
    func testTheAuditListingChoosesATypeItsAcceptAdmits() async throws {
        _ = try await fixture.created("/v1/vms", #"{"name":"audited"}"#)
        let cases: [(String, String)] = [
            ("application/x-ndjson, application/problem+json", "application/x-ndjson"), ("application/x-ndjson, text/plain", "application/x-ndjson"),
            ("application/x-ndjson;q=0", "application/x-ndjson"), ("application/x-ndjson, */*;q=0.1", "application/x-ndjson"),
            ("application/x-ndjson;q=0.5, application/json", "application/json"), ("application/x-ndjson, application/json", "application/json"),
            ("application/x-ndjson;q=0.9, application/*;q=0.5", "application/x-ndjson"), ("*/*", "application/json"),
        ]
        for (accept, type) in cases {
            let response = await answer("GET", "/v1/audit", accept: accept)
            XCTAssertEqual(response.status, 200, "\(accept): \(text(response))")
            let contentType = response.headers.first { $0.name.lowercased() == "content-type" }?.value ?? ""
            XCTAssertTrue(contentType.hasPrefix(type), "\(accept): answered \(contentType), not \(type)")
        }
    }

    /// Every operation of the contract, asked for a media type none answers with: refused
    /// before any work (406), or earlier for its own reasons (a body it lacks), never a 500.
    func testNoOperationAnswersAnUnacceptableAcceptWithAServerError() async throws {
        let vm = try await fixture.created("/v1/vms", #"{"name":"held"}"#)
        let contract = try Contract.embedded()
        var refusedAt406 = 0
        for operation in contract.operations.values.sorted(by: { $0.id < $1.id }) {
            let target = operation.path.replacingOccurrences(of: "{id}", with: operation.path.hasPrefix("/v1/bindings") ? "bnd-00000000000000000000000000000000" : vm)
                .replacingOccurrences(of: "{address}", with: "0000:3b:00.0")
            let body = ["POST", "PUT", "PATCH"].contains(operation.method) ? "{}" : nil
            let response = await answer(operation.method, target, body: body, accept: "text/x-none")
            XCTAssertLessThan(response.status, 500, "\(operation.id): \(text(response))")
            XCTAssertNotEqual(response.status / 100, 2, "\(operation.id) did its work for a client that cannot read the answer")
            if response.status == 406 { refusedAt406 += 1 }
        }
        XCTAssertGreaterThanOrEqual(refusedAt406, 15, "most operations reach the Accept check")
        let after = text(await answer("GET", "/v1/vms/\(vm)", accept: nil))
        XCTAssertTrue(after.contains(#""name":"held""#), "the VM is still there and unchanged: \(after)")
    }
}
