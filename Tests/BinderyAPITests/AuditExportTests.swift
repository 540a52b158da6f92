@testable import BinderyAPI
@testable import BinderyStore
import Foundation
import XCTest

/// The NDJSON export's lines are written from SQLite's row buffers (no JSONEncoder per event);
/// they must say exactly what a page item says.
final class AuditExportTests: XCTestCase {
    func testEachLineIsThePageItemAsJSON() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bindery-export-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store(dataDirectory: directory)
        let records = [
            AuditRecord(actor: AuditActor(identity: "spiffe://fleet/nova", role: "operator", remoteAddress: "[::1]:4431"),
                        requestID: "req-\"quoted\"", action: "vm.create", resourceType: "vm", resourceID: "vm-1",
                        outcome: .success, httpStatus: 201, before: #"{"a":"line\nbreak \\ slash/"}"#,
                        after: "tab\there \u{1} control é ü 🚀"),
            AuditRecord(actor: AuditActor(identity: "cn:x"), action: "grant.change", resourceType: "grants", outcome: .denied),
            AuditRecord(actor: AuditActor(identity: "cn:y", remoteAddress: "10.0.0.1:1"), action: "vm.delete", resourceType: "vm",
                        resourceID: "vm-2", outcome: .failed, httpStatus: 500, before: "{}"),
        ]
        for record in records {
            _ = try await store.write { db in try AuditChain.append(record, in: db) }
        }
        var query = AuditChain.Query()
        query.limit = 10
        let (events, lines) = try await store.read { [query] db in
            (try AuditChain.events(query, in: db), try AuditNDJSON.lines(query, maxBytes: 1 << 20, in: db))
        }
        XCTAssertEqual(lines.events, 3)
        XCTAssertEqual(lines.lastSeq, 3)
        let split = lines.bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        XCTAssertEqual(split.count, 4, "three lines, each ending in a newline")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for (event, line) in zip(events, split) {
            let ours = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line)) as? NSDictionary)
            let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: encoder.encode(APIHandler.schema(event))) as? NSDictionary)
            XCTAssertEqual(ours, expected)
            // Keys come sorted, as JSONEncoder's .sortedKeys writes them.
            let text = String(decoding: line, as: UTF8.self)
            let keys = ((try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])?.keys.sorted()) ?? []
            let positions = keys.compactMap { text.range(of: "\"\($0)\":")?.lowerBound }
            XCTAssertEqual(positions, positions.sorted())
        }

        // maxBytes ends a read early; `lastSeq` says where to resume.
        let first = try await store.read { [query] db in try AuditNDJSON.lines(query, maxBytes: 1, in: db) }
        XCTAssertEqual(first.events, 1)
        XCTAssertEqual(first.lastSeq, 1)
    }
}
