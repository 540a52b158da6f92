@testable import BinderyHTTP
import COpenSSL
import XCTest

extension HTTPServerTests {
    /// Mozilla's intermediate profile allows X25519, P-256 and P-384 only. Each client offers a
    /// single group, so a handshake that succeeds used it.
    func testOnlyIntermediateKeyExchangeGroupsAreAccepted() throws {
        let port = try start()
        for group in ["X25519", "P-256", "P-384"] {
            XCTAssertEqual(try get(try client(port, maxVersion: TLS1_3_VERSION, groups: group))?.status, 200, group)
        }
        for group in ["X448", "P-521", "ffdhe2048"] {
            XCTAssertThrowsError(try client(port, maxVersion: TLS1_3_VERSION, groups: group), group) { error in
                XCTAssertTrue("\(error)".contains("handshake failed"), "\(error)")
            }
        }
        // TLS 1.2 ties the groups to the certificate's curve too (P-256 here), so only P-256
        // tells anything: the server's list must not shut TLS 1.2 clients out.
        XCTAssertEqual(try get(try client(port, maxVersion: TLS1_2_VERSION, groups: "P-256"))?.status, 200)
    }
}
