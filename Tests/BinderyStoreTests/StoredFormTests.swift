@testable import BinderyStore
import Foundation
import XCTest

/// Conditions and labels read in place from their stored form are what `JSONDecoder` reads,
/// and every stored text still decodes to what was encoded.
final class StoredFormTests: XCTestCase {
    private func viaDecoder(_ text: String) -> [Condition]? {
        try? JSONDecoder().decode([Condition].self, from: Data(text.utf8))
    }

    private func condition(_ type: ConditionType, _ status: String, _ reason: ConditionReason, _ message: String, _ time: String) -> Condition {
        var condition = Condition(type: type, status: true, reason: reason, message: message, at: time)
        condition.status = status
        return condition
    }

    func testEveryEncodedTextDecodesToWhatWasEncoded() {
        let messages = ["", "plain", "é ü 漢字 🚀", "a \"quoted\" word", "back\\slash", "line\nbreak", "tab\there", "\u{0}\u{8}\u{1f}", "/slash/"]
        let types = ConditionType.allCases, reasons = ConditionReason.allCases
        var generator = SystemRandomNumberGenerator()
        var readInPlace = 0
        for round in 0..<2000 {
            let count = round % 4
            let conditions = (0..<count).map { index in
                condition(types[Int(generator.next() % UInt64(types.count))], ["True", "False", "Unknown"][(round + index) % 3],
                          reasons[Int(generator.next() % UInt64(reasons.count))], messages[(round + index) % messages.count],
                          Timestamp.format(Date(timeIntervalSince1970: Double(generator.next() % 4_000_000_000))))
            }
            let text = Condition.encode(conditions)
            XCTAssertEqual(Condition.decode(text), conditions, text)
            XCTAssertEqual(viaDecoder(text), conditions, text)
            if let plain = Condition.decodeStoredForm(text) {
                readInPlace += 1
                XCTAssertEqual(plain, conditions, text)
            } else {
                XCTAssertTrue(text.contains("\\"), "only texts with escapes take JSONDecoder: \(text)")
            }
        }
        XCTAssertGreaterThanOrEqual(readInPlace, 900, "most texts need no escape")
    }

    func testTextsNotInTheStoredFormAreLeftToJSONDecoder() {
        let time = "2026-12-04T00:00:00.000Z"
        let expected = [condition(.ready, "True", .contextOpen, "ok", time)]
        for text in [
            #"[{"type":"Ready","status":"True","reason":"ContextOpen","message":"ok","lastTransitionTime":"\#(time)"}]"#,  // keys not sorted
            #"[ {"lastTransitionTime":"\#(time)","message":"ok","reason":"ContextOpen","status":"True","type":"Ready"} ]"#,  // spaces
            #"[{"lastTransitionTime":"\#(time)","message":"o\u006b","reason":"ContextOpen","status":"True","type":"Ready"}]"#,  // an escape
        ] {
            XCTAssertNil(Condition.decodeStoredForm(text), text)
            XCTAssertEqual(Condition.decode(text), expected, text)
        }
        for text in [
            #"[{"lastTransitionTime":"\#(time)","message":"ok","reason":"ContextOpen","status":"True","type":"Nope"}]"#,
            #"[{"lastTransitionTime":"\#(time)","message":"ok","reason":"ContextOpen","status":"True","type":"Ready"}"#,
            #"[{"lastTransitionTime":"\#(time)","message":"ok","reason":"ContextOpen","status":"True","type":"Ready"}]x"#,
            #"[{"message":"ok","reason":"ContextOpen","status":"True","type":"Ready"}]"#, "[", "", "[,]",
        ] {
            XCTAssertNil(Condition.decodeStoredForm(text), text)
            XCTAssertEqual(Condition.decode(text), viaDecoder(text) ?? [], text)
        }
    }

    func testLabelsReadInPlaceAreWhatJSONDecoderReads() throws {
        let values = ["", "v", "é 漢字 🚀", "a \"q\"", "b\\s", "n\nl", "\u{1}", "/"]
        var generator = SystemRandomNumberGenerator()
        var readInPlace = 0
        for round in 0..<2000 {
            var labels: [String: String] = [:]
            for index in 0..<(round % 5) {
                labels[values[Int(generator.next() % UInt64(values.count))] + "k\(index)"] = values[(round + index) % values.count]
            }
            let text = JSONText.object(labels)
            XCTAssertEqual(try JSONDecoder().decode([String: String].self, from: Data(text.utf8)), labels, text)
            if let plain = StoredFormReader.stringMap(text) {
                readInPlace += 1
                XCTAssertEqual(plain, labels, text)
            } else {
                XCTAssertTrue(text.contains("\\"), "only texts with escapes take JSONDecoder: \(text)")
            }
        }
        XCTAssertGreaterThan(readInPlace, 300)
        for text in [#"{"a":"1","a":"2"}"#, #"{ "a":"1"}"#, #"{"a":1}"#, #"{"a":"1"}x"#, "{", ""] {
            XCTAssertNil(StoredFormReader.stringMap(text), text)
        }
        XCTAssertEqual(StoredFormReader.stringMap("{}"), [:])
    }
}
