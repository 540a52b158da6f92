import BinderyStore
import Foundation
import XCTest

/// What an event loop keeps between the reads of one wakeup (a read snapshot, the grants) is
/// let go before it waits: a change made outside the daemon's writer is read by the next request.
final class LoopSnapshotEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    func testAChangeMadeOutsideTheDaemonIsReadByTheNextRequest() throws {
        try startServer()
        let created = try curl("/v1/vms", method: "POST", body: #"{"name":"before","memory":[{"guestAddress":"0x0","size":1073741824}]}"#)
        XCTAssertEqual(created.status, 201, created.body)
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(created.body.utf8)) as? [String: Any])?["id"] as? String)
        let outside = try Store(dataDirectory: directory)
        // Quiet first: the reconciler done with the VM, and its representation stored (a read asks
        // for it), so no commit of the daemon's own lets a kept snapshot go by chance.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let ready = try curl("/v1/vms/\(id)").body.contains(#""phase":"Ready""#)
            let stored = try outside.pool.read { db in
                try Bool.fetchOne(db, sql: "SELECT representation IS NOT NULL FROM vms WHERE id = ?", arguments: [id]) ?? false
            }
            if ready && stored { break }
            usleep(20_000)
        }
        // Each connection lands on one of the loops; every loop keeps a snapshot of this state.
        for _ in 0..<10 {
            XCTAssertTrue(try curl("/v1/vms/\(id)").body.contains(#""name":"before""#))
            XCTAssertTrue(try curl("/v1/vms").body.contains(#""name":"before""#))
        }

        // Another process writes the row (as an operator's sqlite3 would), not the daemon's writer.
        _ = try outside.writer.writeAndWait { db in try db.execute(sql: "UPDATE vms SET name = 'after' WHERE id = ?", arguments: [id]) }
        for _ in 0..<10 {
            for path in ["/v1/vms/\(id)", "/v1/vms"] {
                let read = try curl(path)
                XCTAssertTrue(read.body.contains(#""name":"after""#) && !read.body.contains(#""name":"before""#), "\(path): \(read.body)")
            }
        }
    }
}
