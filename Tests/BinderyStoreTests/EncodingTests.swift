@testable import BinderyStore
import Foundation
import XCTest

/// The hand-written encoders on the write path agree with Foundation's.
final class EncodingTests: XCTestCase {
    func testJSONStringEscapingRoundTripsThroughJSONSerialization() throws {
        let samples = ["plain", "", "quote\"back\\slash", "line\nfeed\rtab\t", "\u{01}\u{1f}ctl", "ünïcødé ✓ 🎛", "/slash"]
        for sample in samples {
            let literal = JSONText.string(sample)
            let decoded = try JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8)) as? [String]
            XCTAssertEqual(decoded, [sample], literal)
        }
        XCTAssertEqual(JSONText.string("\u{01}"), "\"\\u0001\"")
    }

    func testObjectsHaveSortedKeys() {
        XCTAssertEqual(JSONText.object(["b": "2", "a": "1"]), #"{"a":"1","b":"2"}"#)
        XCTAssertEqual(JSONText.object([("z", "1"), ("m", "null")]), #"{"m":null,"z":1}"#)
    }

    /// Objects are written into one string; the text is what joining the pieces gave, which
    /// stored audit events and labels hold.
    func testObjectsEqualTheirJoinedForm() {
        let texts = ["", "a", "B", "a10", "a9", "é", "e\u{301}", "ü", "quote\"", "back\\slash", "ctl\u{1}", "tab\t", "😀", "z/y"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            var map: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                map[texts.randomElement(using: &generator)! + texts.randomElement(using: &generator)!] = texts.randomElement(using: &generator)!
            }
            let joined = "{" + map.map { ($0.key, JSONText.string($0.value)) }.sorted { $0.0 < $1.0 }
                .map { JSONText.string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
            XCTAssertEqual(JSONText.object(map), joined)
            let members = map.map { ($0.key, JSONText.string($0.value)) }
            XCTAssertEqual(JSONText.object(members), joined)
        }
    }

    func testTimestampIsRFC3339UTCWithMilliseconds() {
        let date = Date(timeIntervalSince1970: 1_795_599_807.123_9)
        XCTAssertEqual(Timestamp.format(date), "2026-11-25T09:43:27.123Z")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let now = Date()
        XCTAssertEqual(Timestamp.format(now).prefix(19), formatter.string(from: now).prefix(19))
    }

    func testVMAuditJSONParsesAndCarriesTheRecord() throws {
        let record = VMRecord(id: "vm-1", spec: VMSpec(name: "a\"b", labels: ["k": "v"], memory: [MemoryRegion(guestAddress: 0x1000, size: 4096, backingPath: "/dev/shm/x")]),
                              meta: ResourceMeta(generation: 1, resourceVersion: 2, createdAt: "t0", updatedAt: "t1"), phase: .pending, observedGeneration: 0)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(record.auditJSON.utf8)) as? [String: Any])
        XCTAssertEqual(object["name"] as? String, "a\"b")
        XCTAssertEqual((object["labels"] as? [String: String])?["k"], "v")
        XCTAssertEqual(((object["memory"] as? [[String: Any]])?.first?["guestAddress"]) as? String, "0x1000")
        XCTAssertEqual(object["resourceVersion"] as? Int, 2)
    }
}

final class ResourceIDTests: XCTestCase {
    func testIDsArePrefixedHexAndDistinct() {
        let ids = (0..<1000).map { _ in ResourceID.make(prefix: "vm") }
        XCTAssertEqual(Set(ids).count, 1000)
        for id in ids.prefix(10) {
            XCTAssertTrue(id.hasPrefix("vm-"))
            XCTAssertEqual(id.count, 35)
            XCTAssertTrue(id.dropFirst(3).allSatisfy { "0123456789abcdef".contains($0) })
        }
    }

    /// The first 12 digits are the creation time in milliseconds, so later ids sort after
    /// earlier ones (rows land at the right edge of the id indexes); the other 20 are random.
    func testIDsStartWithTheirCreationTime() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let id = ResourceID.make(prefix: "bnd")
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        let milliseconds = try XCTUnwrap(UInt64(id.dropFirst(4).prefix(12), radix: 16))
        XCTAssertTrue((before...after).contains(milliseconds), "\(id) carries \(milliseconds), made between \(before) and \(after)")

        let earlier = (0..<100).map { _ in ResourceID.make(prefix: "vm", milliseconds: 0x0190_0000_0000) }
        let later = (0..<100).map { _ in ResourceID.make(prefix: "vm", milliseconds: 0x0190_0000_0001) }
        XCTAssertLessThan(earlier.max()!, later.min()!)
        // Within one millisecond the random part still tells them apart.
        XCTAssertEqual(Set(earlier).count, 100)
        XCTAssertEqual(Set(earlier.map { $0.dropFirst(3 + 12) }).count, 100)
        XCTAssertEqual(ResourceID.make(prefix: "vm", milliseconds: 0x0190_0000_0000).prefix(15), "vm-019000000000")
    }
}

/// Timestamps of any date, as clients can send them in filters.
final class TimestampTests: XCTestCase {
    func testAnyDateFormatsWithoutTrapping() {
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: -0.5)), "1969-12-31T23:59:59.500Z")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: -62_167_219_200 - 86_400)), "0000-01-01T00:00:00.000Z", "clamped")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: 1e15)), "9999-12-31T23:59:59.999Z", "clamped")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: .infinity)), "9999-12-31T23:59:59.999Z")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: -.infinity)), "0000-01-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: 1_764_806_400.25)), "2025-12-04T00:00:00.250Z")
    }
}
