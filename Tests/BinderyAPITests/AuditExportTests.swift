@testable import BinderyAPI
@testable import BinderyStore
import Foundation
import XCTest

/// The NDJSON export's lines are written by hand (no JSONEncoder per event); they must say
/// exactly what a page item says.
final class AuditExportTests: XCTestCase {
    private func event(_ record: AuditRecord, seq: Int) -> AuditEvent {
        AuditEvent(seq: seq, time: "2026-12-04T12:00:00.123Z", record: record,
                   previousHash: Data(repeating: 0xab, count: 32), hash: Data((0..<32).map { UInt8($0) }))
    }

    func testEachLineIsThePageItemAsJSON() throws {
        let full = AuditRecord(actor: AuditActor(identity: "spiffe://fleet/nova", role: "operator", remoteAddress: "[::1]:4431"),
                               requestID: "req-\"quoted\"", action: "vm.create", resourceType: "vm", resourceID: "vm-1",
                               outcome: .success, httpStatus: 201, before: #"{"a":"line\nbreak \\ slash/"}"#,
                               after: "tab\there \u{1} control é ü 🚀")
        let bare = AuditRecord(actor: AuditActor(identity: "cn:x"), action: "grant.change", resourceType: "grants", outcome: .denied)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for (seq, record) in [full, bare].enumerated() {
            let event = event(record, seq: seq + 1)
            var line: [UInt8] = []
            AuditExport.appendLine(for: event, to: &line)
            XCTAssertEqual(line.last, UInt8(ascii: "\n"))
            XCTAssertEqual(line.filter { $0 == UInt8(ascii: "\n") }.count, 1, "one line per event")
            let ours = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.dropLast())) as? NSDictionary)
            let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: encoder.encode(APIHandler.schema(event))) as? NSDictionary)
            XCTAssertEqual(ours, expected)
            // Keys come sorted, as JSONEncoder's .sortedKeys writes them.
            let keys = (try JSONSerialization.jsonObject(with: Data(line.dropLast())) as? [String: Any])?.keys.sorted()
            let text = String(decoding: line, as: UTF8.self)
            let positions = (keys ?? []).compactMap { text.range(of: "\"\($0)\":")?.lowerBound }
            XCTAssertEqual(positions, positions.sorted())
        }
    }
}
