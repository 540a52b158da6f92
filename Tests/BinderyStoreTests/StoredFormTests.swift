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
        let messages = ["", "plain", "é ü 漢字 🚀", "a \"quoted\" word", "back\\slash", "line\nbreak", "tab\there", "\u{0}\u{8}\u{1f}", "/slash/",
                        "del\u{7f}", "sep\u{2028}", "\u{fffd}", "e\u{301}", "\u{e9}"]
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
                // Byte for byte: `==` on strings is canonical equivalence (é and e + ◌́ are equal).
                XCTAssertEqual(plain.map { Array($0.message.utf8) }, conditions.map { Array($0.message.utf8) }, text)
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
        let values = ["", "v", "é 漢字 🚀", "a \"q\"", "b\\s", "n\nl", "\u{1}", "/", "\u{7f}", "\u{2028}", "e\u{301}"]
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
                XCTAssertEqual(plain.mapValues { Array($0.utf8) }, labels.mapValues { Array($0.utf8) }, text)
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

    /// Two texts that differ only in Unicode form are different texts: the memo answers each
    /// with its own values.
    func testTheMemoTellsTextsApartByTheirBytes() {
        let memo = TextMemo<[UInt8]>(capacity: 16)
        let composed = "caf\u{e9}\n", decomposed = "cafe\u{301}\n"
        XCTAssertEqual(composed, decomposed, "equal as Swift strings")
        XCTAssertEqual(memo.value(for: composed) { Array($0.utf8) }, Array(composed.utf8))
        XCTAssertEqual(memo.value(for: decomposed) { Array($0.utf8) }, Array(decomposed.utf8))
        XCTAssertEqual(memo.value(for: decomposed) { _ in [] }, Array(decomposed.utf8), "remembered")
        XCTAssertEqual(memo.value(for: composed) { Array($0.utf8) }, Array(composed.utf8), "never the other's")
    }
}
