@testable import BinderyAPI
import BinderyStore
import Foundation
import XCTest

/// `JSONValueDecoder` decodes what `JSONDecoder` (configured as the generated code configures
/// it) decodes from the same checked document, and refuses what it refuses: for every request
/// body of the API, on valid documents and on thousands of mutations of them. So does
/// `VMCreate(checked:)`, the create's own reader.
final class JSONValueDecoderTests: XCTestCase {
    private static let examples: [String] = [
        #"{"name":"web-1","labels":{"a":"b","é/~":"\"\\"},"memory":[{"guestAddress":"0x0","size":1073741824},{"guestAddress":"0x100000000","size":2097152,"backing":{"path":"/m/g.img","offset":4096}}]}"#,
        #"{"vm":"vm-0123456789abcdef0123456789abcdef","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":5,"hostPasid":77,"format":"intel-vtd","version":1,"pageTable":{"address":"0x1000","addressWidth":48},"vtd":{"sre":true,"eafe":false,"pcd":true,"pwt":false,"emte":true,"cd":false,"pat":7,"emt":1}}"#,
        #"{"name":"renamed","labels":{"k":"v"}}"#,
        #"{"name":"many","labels":{"a0":"0","a1":"1","a2":"2","a3":"3","a4":"4","a5":"5","a6":"6","a7":"7","a8":"8","a9":"9","b0":"0","b1":"1","b2":"2","b3":"3","b4":"4","b5":"5","b6":"6","b7":"7","b8":"8","b9":"9"}}"#,
        #"{"managed":true}"#,
        #"{"ttlSeconds":60}"#,
        #"{"address":"0x2000","addressWidth":57}"#,
    ]

    /// Numbers at and past every boundary the generated types have, written in several ways.
    private static let numbers = ["0", "-0", "1", "-1", "7", "48", "57", "4096", "1.5", "-2.5e-3", "1e3", "1E+2", "4.096e3", "2147483647",
                                  "2147483648", "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
                                  "-9223372036854775808", "-9223372036854775809", "18446744073709551616", "1e400", "0.0"]
    private static let strings = ["", "x", "0x0", "0x1000", "guest-page-table", "intel-vtd", "2026-12-05T00:00:00Z", "é", "\u{0}", "/"]

    func testDecodesWhatJSONDecoderDecodesFromEveryBodyAndItsMutations() throws {
        var generator = SplitMix64(seed: 13)
        var compared = 0, decoded = 0
        for example in Self.examples {
            let document = try JSONParser.parse(Array(example.utf8))
            for round in 0..<1_500 {
                let mutated = round == 0 ? document : mutate(document, &generator, depth: 0)
                // What the contract's check hands on: the bytes parsed again, integral numbers made plain.
                guard let checked = try? JSONParser.parse(mutated.serialized).canonical else { continue }
                compared += 1
                decoded += compare(Components.Schemas.VMCreate.self, checked)
                // The busiest body's own reader takes exactly what JSONDecoder takes.
                XCTAssertEqual(Components.Schemas.VMCreate(checked: checked), Self.decodedByJSONDecoder(Components.Schemas.VMCreate.self, checked),
                               String(decoding: checked.serialized, as: UTF8.self))
                decoded += compare(Components.Schemas.BindingCreate.self, checked)
                decoded += compare(Components.Schemas.VMPatch.self, checked)
                decoded += compare(Components.Schemas.Assignment.self, checked)
                decoded += compare(Components.Schemas.AttachmentRequest.self, checked)
                decoded += compare(Components.Schemas.PageTable.self, checked)
            }
        }
        XCTAssertGreaterThan(compared, 8_000)
        XCTAssertGreaterThan(decoded, 1_000, "enough mutations still decode to compare values, not only refusals")
    }

    func testDatesAndScalarsAtTheTopLevel() throws {
        XCTAssertEqual(try JSONValueDecoder.decode(Date.self, from: .string("2026-12-05T00:00:00.5Z")), Timestamp.parse("2026-12-05T00:00:00.5Z"))
        XCTAssertThrowsError(try JSONValueDecoder.decode(Date.self, from: .string("yesterday")))
        XCTAssertThrowsError(try JSONValueDecoder.decode(Date.self, from: .number("0")))
        XCTAssertEqual(try JSONValueDecoder.decode([Int8].self, from: .array([.number("127"), .number("-128")])), [127, -128])
        XCTAssertThrowsError(try JSONValueDecoder.decode(Int8.self, from: .number("128")))
        XCTAssertThrowsError(try JSONValueDecoder.decode(Double.self, from: .number("1e400")))
        XCTAssertEqual(try JSONValueDecoder.decode([String?].self, from: .array([.null, .string("a")])), [nil, "a"])
        XCTAssertThrowsError(try JSONValueDecoder.decode(Data.self, from: .string("AA==")), "left to JSONDecoder")
    }

    /// What the generated path's `JSONDecoder` makes of `checked`, serialized as the transport hands it on.
    private static func decodedByJSONDecoder<T: Decodable>(_ type: T.Type, _ checked: JSONValue) -> T? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { try RFC3339.Transcoder().decode($0.singleValueContainer().decode(String.self)) }
        return try? decoder.decode(type, from: Data(checked.serialized))
    }

    /// 1 when both decoded (and agree), 0 when both refused; a failure when they differ.
    private func compare<T: Decodable & Equatable>(_ type: T.Type, _ checked: JSONValue, file: StaticString = #filePath, line: UInt = #line) -> Int {
        let expected = Self.decodedByJSONDecoder(type, checked)
        let actual = try? JSONValueDecoder.decode(type, from: checked)
        XCTAssertEqual(actual, expected, "\(type) from \(String(decoding: checked.serialized, as: UTF8.self))", file: file, line: line)
        return expected == nil ? 0 : 1
    }

    private func mutate(_ value: JSONValue, _ generator: inout SplitMix64, depth: Int) -> JSONValue {
        func pick(_ count: Int) -> Int { Int(generator.next() % UInt64(count)) }
        if depth > 4 || pick(6) == 0 { return scalar(&generator) }
        switch value {
        case var .object(members):
            switch pick(4) {
            case 0 where !members.isEmpty: members.remove(at: pick(members.count))
            case 1: members.append((key: ["extra", "name", "size", "vtd", "super", "x"][pick(6)] + String(pick(3)), value: scalar(&generator)))
            default:
                if !members.isEmpty {
                    let index = pick(members.count)
                    members[index].value = mutate(members[index].value, &generator, depth: depth + 1)
                }
            }
            // Keys stay distinct: the parser refuses duplicates, so the decoder never sees them.
            var seen = Set<String>()
            return .object(members.filter { seen.insert($0.key).inserted })
        case var .array(elements):
            switch pick(3) {
            case 0 where !elements.isEmpty: elements.removeLast()
            case 1: elements.append(elements.first.map { mutate($0, &generator, depth: depth + 1) } ?? scalar(&generator))
            default:
                if !elements.isEmpty {
                    let index = pick(elements.count)
                    elements[index] = mutate(elements[index], &generator, depth: depth + 1)
                }
            }
            return .array(elements)
        default:
            return scalar(&generator)
        }
    }

    private func scalar(_ generator: inout SplitMix64) -> JSONValue {
        switch generator.next() % 7 {
        case 0: return .string(Self.strings[Int(generator.next() % UInt64(Self.strings.count))])
        case 1: return .bool(generator.next() % 2 == 0)
        case 2: return .null
        case 3: return .object([])
        case 4: return .array([.number("1")])
        default: return .number(Self.numbers[Int(generator.next() % UInt64(Self.numbers.count))])
        }
    }
}
