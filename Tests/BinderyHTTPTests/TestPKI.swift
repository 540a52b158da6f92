import Foundation
import XCTest

/// Certificates made by the `openssl` command for one test: a CA, a server certificate for
/// localhost, clients with a URI SAN, a DNS SAN or only a CN, and a client from another CA.
struct TestPKI {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "bindery-pki-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeCA("ca")
        try makeCA("other-ca")
        try issue("server", by: "ca", subject: "/CN=localhost", extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth")
        try issue("uri-client", by: "ca", subject: "/CN=ignored-cn", extensions: "subjectAltName=URI:spiffe://bindery.test/orchestrator,DNS:ignored.example\nextendedKeyUsage=clientAuth")
        try issue("dns-client", by: "ca", subject: "/CN=ignored-cn", extensions: "subjectAltName=DNS:nova.example\nextendedKeyUsage=clientAuth")
        try issue("cn-client", by: "ca", subject: "/CN=auditor-7", extensions: "extendedKeyUsage=clientAuth")
        try issue("stranger", by: "other-ca", subject: "/CN=stranger", extensions: "extendedKeyUsage=clientAuth")
    }

    func path(_ name: String) -> String { "\(directory)/\(name).pem" }
    func key(_ name: String) -> String { "\(directory)/\(name)-key.pem" }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    private func makeCA(_ name: String) throws {
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key(name),
                     "-out", path(name), "-days", "2", "-subj", "/CN=\(name)", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    /// Issues `name` from `ca` with extensions given as config lines.
    func issue(_ name: String, by ca: String, subject: String, extensions: String) throws {
        let csr = "\(directory)/\(name).csr", ext = "\(directory)/\(name).ext"
        try extensions.write(toFile: ext, atomically: true, encoding: .utf8)
        try openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key(name),
                     "-out", csr, "-subj", subject])
        try openssl(["x509", "-req", "-in", csr, "-CA", path(ca), "-CAkey", key(ca), "-CAcreateserial", "-out", path(name),
                     "-days", "2", "-extfile", ext])
    }

    /// Revokes `name` (issued by `ca`) and writes a CRL for `ca`; returns the CRL's path.
    func revoke(_ name: String, issuedBy ca: String = "ca") throws -> String {
        let database = "\(directory)/\(ca)-db"
        try FileManager.default.createDirectory(atPath: database, withIntermediateDirectories: true)
        try "".write(toFile: "\(database)/index.txt", atomically: true, encoding: .utf8)
        try "01\n".write(toFile: "\(database)/crlnumber", atomically: true, encoding: .utf8)
        let config = """
            [ ca ]
            default_ca = bindery_test
            [ bindery_test ]
            database = \(database)/index.txt
            crlnumber = \(database)/crlnumber
            default_md = sha256
            default_crl_days = 2
            certificate = \(path(ca))
            private_key = \(key(ca))
            """
        try config.write(toFile: "\(database)/ca.cnf", atomically: true, encoding: .utf8)
        try openssl(["ca", "-config", "\(database)/ca.cnf", "-revoke", path(name)])
        let crl = "\(directory)/\(ca)-crl.pem"
        try openssl(["ca", "-config", "\(database)/ca.cnf", "-gencrl", "-out", crl])
        return crl
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw NSError(domain: "openssl", code: Int(process.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "openssl \(arguments.first!): \(text)"])
        }
    }
}
