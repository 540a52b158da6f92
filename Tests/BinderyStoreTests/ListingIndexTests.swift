@testable import BinderyStore
import GRDB
import XCTest

final class ListingIndexTests: XCTestCase {
    /// Every list page reads through an index that holds only listed rows, in id order: no
    /// scan of the table (tombstones, other owners' bindings) and no sort, with or without a
    /// filter. A page filtered by a device with few bindings walked every binding before.
    func testEveryListPageSearchesAnIndexInIdOrder() async throws {
        let store = try Store(dataDirectory: try makeScratchDirectory(self))
        var queries: [(String, StatementArguments)] = [(VMViews.pageQuery, ["", 101])]
        for (vm, device) in [(nil, nil), ("vm-1", nil), (nil, "0000:3b:00.0"), ("vm-1", "0000:3b:00.0")] as [(String?, String?)] {
            let (sql, arguments) = BindingRepository.pageQuery(vmID: vm, deviceAddress: device)
            queries.append((sql, StatementArguments(arguments) + ["", 101]))
        }
        let all = queries
        let plans = try await store.read { db in
            try all.map { sql, arguments in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }.joined(separator: "; ")
            }
        }
        for (plan, query) in zip(plans, queries) {
            XCTAssertTrue(plan.hasPrefix("SEARCH ") && (plan.contains("USING INDEX vms_listed") || plan.contains("USING INDEX bindings_listed")),
                          "\(query.0): \(plan)")
            XCTAssertFalse(plan.contains("TEMP B-TREE"), "\(query.0): \(plan)")
            XCTAssertFalse(plan.contains("SCAN"), "\(query.0): \(plan)")
        }
    }
}
