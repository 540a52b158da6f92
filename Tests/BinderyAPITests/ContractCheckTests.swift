@testable import BinderyAPI
@testable import BinderyHTTP
import BinderyStore
import XCTest

/// The contract's checks, applied by the server itself before any handler runs.
final class ContractCheckTests: XCTestCase {
    private static let contract = try! Contract.embedded()

    private func request(_ method: String, _ target: String, body: String? = nil, headers: [(String, String)] = []) -> BinderyHTTP.HTTPRequest {
        let parts = target.split(separator: "?", maxSplits: 1)
        var fields = [("Host", "localhost")] + headers
        if body != nil { fields.append(("Content-Type", "application/json")) }
        let head = HTTPRequestHead(method: method, target: target, path: String(parts[0]), query: parts.count > 1 ? String(parts[1]) : nil,
                                   minorVersion: 1, headers: fields.map { (name: $0.0, value: $0.1) },
                                   framing: body == nil ? .none : .contentLength(body!.utf8.count))
        return BinderyHTTP.HTTPRequest(head: head, body: Array((body ?? "").utf8),
                                       peer: PeerInfo(identity: "t", certificateFingerprint: "", remoteAddress: "127.0.0.1:1"))
    }

    private func problems(_ method: String, _ path: String, _ target: String, body: String? = nil,
                          parameters: [String: Substring] = [:], headers: [(String, String)] = []) -> APIError? {
        let operation = Self.contract.operation(method: method, path: path)!
        do {
            try operation.check(request(method, target, body: body, headers: headers), pathParameters: parameters)
            return nil
        } catch {
            return error
        }
    }

    func testEveryOperationOfTheSpecIsKnown() {
        XCTAssertNotNil(Self.contract.operation(method: "POST", path: "/v1/vms"))
        XCTAssertNotNil(Self.contract.operation(method: "GET", path: "/v1/audit"))
        XCTAssertGreaterThan(Self.contract.operations.count, 20)
    }

    func testMaxItemsIsAppliedBeforeAnyPairwiseWork() {
        let regions = (0..<20_000).map { "{\"guestAddress\":\"0x\(String($0 * 4096, radix: 16))\",\"size\":4096}" }.joined(separator: ",")
        let refusal = problems("POST", "/v1/vms", "/v1/vms", body: "{\"name\":\"a\",\"memory\":[\(regions)]}")
        XCTAssertEqual(refusal?.status, 422)
        XCTAssertEqual(refusal?.fields.first?.pointer, "/memory")
        XCTAssertEqual(refusal?.fields.first?.detail, "must have at most 64 items")
    }

    func testProblemsNameThePointerInAPlainSentence() {
        let refusal = problems("POST", "/v1/vms", "/v1/vms", body: #"{"name":"a","memory":[{"guestAddress":"0x0","size":"big"}],"extra":1}"#)
        XCTAssertEqual(refusal?.status, 422)
        let fields = Dictionary(uniqueKeysWithValues: (refusal?.fields ?? []).map { ($0.pointer, $0.detail) })
        XCTAssertEqual(fields["/memory/0/size"], "must be an integer")
        XCTAssertEqual(fields["/extra"], "is not a field of this request")
        XCTAssertFalse(refusal!.detail.contains("DecodingError"))
    }

    /// Pointers escape `~` and `/` in keys (RFC 6901), count array elements from 0, and name
    /// every problem at its own place, nested or not.
    func testPointersEscapeKeysAndCountElements() {
        let body = #"{"name":"a","labels":{"a/b~c":5,"ok":"x","":"y"},"memory":[{"guestAddress":"0x0","size":4096},{"size":4096}],"x/y":1}"#
        let refusal = problems("POST", "/v1/vms", "/v1/vms", body: body)
        XCTAssertEqual(refusal?.status, 422)
        let fields = Dictionary(uniqueKeysWithValues: (refusal?.fields ?? []).map { ($0.pointer, $0.detail) })
        XCTAssertEqual(fields, ["/labels/a~1b~0c": "must be a string", "/labels/": "must not be empty",
                                "/memory/1/guestAddress": "is required", "/x~1y": "is not a field of this request"])
        let query = problems("GET", "/v1/vms", "/v1/vms?limit=0")
        XCTAssertEqual(query?.fields.map(\.pointer), ["/query/limit"])
    }

    func testTheBodyMustBeJSONWhateverTheCaseAndParameters() {
        let media = Contract.Operation.mediaType(of:)
        XCTAssertEqual(media("application/json"), "application/json")
        XCTAssertEqual(media(" Application/JSON ; charset=utf-8"), "application/json")
        XCTAssertEqual(media("\tapplication/json\t;"), "application/json")
        XCTAssertEqual(media(""), "")
        XCTAssertEqual(media(" ; application/json"), "")
        XCTAssertEqual(media("application/json-seq"), "application/json-seq")
        let body = #"{"name":"a"}"#
        for (type, status) in [("APPLICATION/JSON; charset=utf-8", nil), ("text/plain", 400), ("application/jsonx", 400), (" ", 400)] as [(String, Int?)] {
            var request = request("POST", "/v1/vms", body: body)
            request.head.headers.removeAll { $0.name == "Content-Type" }
            request.head.headers.append((name: "Content-Type", value: type))
            let operation = Self.contract.operation(method: "POST", path: "/v1/vms")!
            do {
                try operation.check(request, pathParameters: [:])
                XCTAssertNil(status, type)
            } catch {
                XCTAssertEqual(error.status, status, type)
            }
        }
    }

    func testIntegersBeyondSixtyFourBitsAndFractionsAreRefused() {
        for size in ["18446744073709551616", "99999999999999999999999", "4096.5", "-4096", "1e300"] {
            let refusal = problems("POST", "/v1/vms", "/v1/vms", body: #"{"name":"a","memory":[{"guestAddress":"0x0","size":\#(size)}]}"#)
            XCTAssertEqual(refusal?.status, 422, size)
            XCTAssertEqual(refusal?.fields.first?.pointer, "/memory/0/size", size)
        }
    }

    func testMalformedOrAmbiguousJSONIs400() {
        for body in [#"{"name":"a","name":"b"}"#, "{", String(repeating: "[", count: 5000), #"{"name":"a"} x"#, "{\"name\":\"\u{01}\"}"] {
            let refusal = problems("POST", "/v1/vms", "/v1/vms", body: body)
            XCTAssertEqual(refusal?.status, 400, body.prefix(40).description)
            XCTAssertTrue(refusal?.detail.hasPrefix("the body is not valid JSON") ?? false, refusal?.detail ?? "")
        }
    }

    func testQueryParametersAreChecked() {
        XCTAssertEqual(problems("GET", "/v1/vms", "/v1/vms?limit=0")?.fields.first?.pointer, "/query/limit")
        XCTAssertEqual(problems("GET", "/v1/vms", "/v1/vms?limit=abc")?.fields.first?.detail, "must be an integer")
        XCTAssertEqual(problems("GET", "/v1/vms", "/v1/vms?limit=1&limit=2")?.fields.first?.detail, "must be given once")
        XCTAssertNil(problems("GET", "/v1/vms", "/v1/vms?limit=1000"))
        XCTAssertNil(problems("GET", "/v1/audit", "/v1/audit?since=2026-01-01T00:00:00.5%2B01:00&until=2026-12-31t23:59:60z"))
        XCTAssertEqual(problems("GET", "/v1/audit", "/v1/audit?since=yesterday")?.fields.first?.pointer, "/query/since")
    }

    func testPathParametersThatCannotNameAResourceAre404() {
        XCTAssertEqual(problems("GET", "/v1/vms/{id}", "/v1/vms/nope", parameters: ["id": "nope"])?.status, 404)
        XCTAssertNil(problems("GET", "/v1/vms/{id}", "/v1/vms/vm-0c9e4f6a1b2d3c4e5f60718293a4b5c6",
                              parameters: ["id": "vm-0c9e4f6a1b2d3c4e5f60718293a4b5c6"]))
    }

    func testRFC3339AcceptsEveryFormOfTheGrammarAndNothingElse() {
        for valid in ["2026-01-31T12:00:00Z", "2026-01-31t12:00:00z", "2026-01-31T12:00:00.123456789Z", "2026-01-31T12:00:00+05:30",
                      "2024-02-29T00:00:00-00:00", "2026-06-30T23:59:60Z"] {
            XCTAssertNotNil(Timestamp.parse(valid), valid)
        }
        for invalid in ["2026-01-31", "2026-01-31 12:00:00Z", "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
                        "2026-01-31T24:00:00Z", "2026-01-31T12:00:00", "2026-01-31T12:00:00.Z", "2026-01-31T12:00:00+5:30", ""] {
            XCTAssertNil(Timestamp.parse(invalid), invalid)
        }
        XCTAssertEqual(Timestamp.parse("2026-01-31T12:00:00+01:00"), Timestamp.parse("2026-01-31T11:00:00Z"))
    }

    func testIntegralNumbersAreCheckedAndHandedOnAsIntegers() throws {
        XCTAssertEqual(JSONNumber.integerText("8192.0"), "8192")
        XCTAssertEqual(JSONNumber.integerText("8.192e3"), "8192")
        XCTAssertEqual(JSONNumber.integerText("-4E1"), "-40")
        XCTAssertEqual(JSONNumber.integerText("0.0"), "0")
        XCTAssertNil(JSONNumber.integerText("4096.5"))
        XCTAssertNil(JSONNumber.integerText("1e30"), "too large for 64 bits")
        XCTAssertNil(JSONNumber.integerText("1e-3"))
        let checked = try JSONParser.parse(Array(#"{"a":[8192.0,1.5,"x\"y",true,null]}"#.utf8)).canonical
        XCTAssertEqual(String(decoding: checked.serialized, as: UTF8.self), #"{"a":[8192,1.5,"x\"y",true,null]}"#)
        XCTAssertNil(problems("POST", "/v1/vms", "/v1/vms", body: #"{"name":"a","memory":[{"guestAddress":"0x0","size":8192.0}]}"#))
    }

    func testQueryDecodingAnswersAsFoundationDoes() throws {
        var inputs = ["", "limit=100", "a+b", "%41%62", "%4", "%", "%zz", "%E2%82%AC", "%C3%28", "%2B+%20", "x%00y", "%e2%82%ac", "café", "100%"]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("%+aF0 9é/".unicodeScalars)
        for _ in 0..<2_000 {
            inputs.append(String(String.UnicodeScalarView((0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })))
        }
        for input in inputs {
            let decoded = QueryString.decode(Substring(input))
            // Foundation refuses some bytes that are not UTF-8 and repairs others (U+FFFD, which no
            // input here holds): all are refused.
            let foundation = input.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            XCTAssertEqual(decoded, foundation?.contains("\u{FFFD}") == true ? nil : foundation, input)
        }
        XCTAssertNil(QueryString.decode("%4"))
        XCTAssertNil(QueryString.decode("a%zz"))
        XCTAssertNil(QueryString.decode("%C3%28"))
        XCTAssertNil(QueryString.decode("%a9"), "not UTF-8: refused, as the generated handler would read it as empty")
        XCTAssertEqual(QueryString.decode("%2B+%20"), "+  ")
    }
}
