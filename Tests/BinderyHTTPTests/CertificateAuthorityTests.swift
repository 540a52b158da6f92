@testable import BinderyHTTP
import COpenSSL
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

    /// Leaf certificates live at most a year (notAfter - notBefore), whatever the caller asks.
    func testIssuedCertificatesAreValidForAtMost365Days() throws {
        let ca = try CertificateAuthority.make(commonName: "CA")
        let server = try ca.issue(commonName: "localhost", subjectAltName: "DNS:localhost", usage: .server)
        let client = try ca.issue(commonName: "ops", subjectAltName: "URI:spiffe://bindery.local/ops", usage: .client)
        for (name, certificate) in [("server", server), ("client", client)] {
            let seconds = try validitySeconds(of: certificate.certificatePEM)
            XCTAssertLessThanOrEqual(seconds, 365 * 86_400, "\(name): \(Double(seconds) / 86_400) days")
            XCTAssertGreaterThan(seconds, 0, name)
        }
        XCTAssertThrowsError(try ca.issue(commonName: "long", subjectAltName: nil, usage: .client, days: 366)) { error in
            XCTAssertTrue("\(error)".contains("365"), "\(error)")
        }
    }

    /// notAfter - notBefore of a PEM certificate, in seconds.
    private func validitySeconds(of pem: String) throws -> Int {
        let bio = BIO_new_mem_buf(pem, -1)
        defer { BIO_free(bio) }
        let certificate = try XCTUnwrap(PEM_read_bio_X509(bio, nil, nil, nil), "PEM_read_bio_X509")
        defer { X509_free(certificate) }
        var days: Int32 = 0, seconds: Int32 = 0
        XCTAssertEqual(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(certificate), X509_get0_notAfter(certificate)), 1)
        return Int(days) * 86_400 + Int(seconds)
    }
}
