@testable import BinderyHTTP
import Foundation
import XCTest

final class CertificateAuthorityTests: XCTestCase {
    func testIssuedCertificatesServeMutualTLSWithTheURIIdentity() throws {
        let directory = NSTemporaryDirectory() + "bindery-ca-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try CertificateAuthority.make(commonName: "Bindery test CA")
        try ca.root.write(to: directory, name: "ca")
        try ca.issue(commonName: "localhost", subjectAltName: "DNS:localhost,IP:127.0.0.1,IP:::1", usage: .server)
            .write(to: directory, name: "server")
        try ca.issue(commonName: "ops", subjectAltName: "URI:spiffe://bindery.local/ops", usage: .client).write(to: directory, name: "ops")
        let keyMode = try FileManager.default.attributesOfItem(atPath: "\(directory)/ops-key.pem")[.posixPermissions] as? Int
        XCTAssertEqual(keyMode, 0o600)

        var configuration = HTTPServerConfiguration(listen: ["127.0.0.1:0"], tls: TLSConfiguration(
            certificatePath: "\(directory)/server.pem", privateKeyPath: "\(directory)/server-key.pem", clientCABundlePath: "\(directory)/ca.pem"))
        configuration.eventLoops = 1
        let server = try HTTPServer(configuration: configuration, handler: EchoHandler())
        try server.start()
        defer { server.shutdown() }
        let client = try TLSTestClient(port: server.boundAddresses[0].port, ca: "\(directory)/ca.pem",
                                       certificate: "\(directory)/ops.pem", key: "\(directory)/ops-key.pem")
        try client.send("GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.body, "spiffe://bindery.local/ops GET /who 0 ")
        XCTAssertEqual(client.serverCommonName, "localhost")

        // A client certificate from a different CA is refused.
        let other = try CertificateAuthority.make(commonName: "Other CA")
        try other.issue(commonName: "intruder", subjectAltName: "URI:spiffe://elsewhere/x", usage: .client).write(to: directory, name: "intruder")
        if let intruder = try? TLSTestClient(port: server.boundAddresses[0].port, ca: "\(directory)/ca.pem",
                                             certificate: "\(directory)/intruder.pem", key: "\(directory)/intruder-key.pem") {
            try? intruder.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            XCTAssertNil(intruder.readResponse())
        }
    }

    func testReadBackMatchesWhatWasWritten() throws {
        let directory = NSTemporaryDirectory() + "bindery-ca-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try CertificateAuthority.make(commonName: "CA")
        try ca.root.write(to: directory, name: "ca")
        XCTAssertEqual(try IssuedCertificate.read(from: directory, name: "ca"), ca.root)
        XCTAssertTrue(ca.root.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
        XCTAssertTrue(ca.root.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
    }
}
