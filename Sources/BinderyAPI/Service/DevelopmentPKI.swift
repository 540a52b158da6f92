import BinderyHTTP
import Foundation

/// The development PKI in `<data-dir>/pki/`: a CA, a server certificate for this host, and an
/// `admin` client certificate granted the admin role. Made on first start, reused after.
package struct DevelopmentPKI: Sendable {
    /// `<data-dir>/pki`.
    package let directory: String
    /// Where role grants for issued client certificates are kept.
    package var roleMapPath: String { directory + "/roles.json" }

    /// The PKI under `dataDirectory`.
    package init(dataDirectory: String) { directory = dataDirectory + "/pki" }

    /// The identity a development client certificate named `name` carries.
    package static func identity(of name: String) -> String { "spiffe://bindery.local/\(name)" }

    /// True when the CA exists already.
    package var exists: Bool { FileManager.default.fileExists(atPath: directory + "/ca.pem") }

    /// Creates the CA, server and admin certificates when absent. Returns true when it made them.
    @discardableResult
    package func ensure() throws -> Bool {
        if exists { return false }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let ca = try CertificateAuthority.make(commonName: "Bindery development CA")
        try ca.root.write(to: directory, name: "ca")
        var names = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
        let host = ProcessInfo.processInfo.hostName
        if !host.isEmpty, host != "localhost", host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) {
            names.append("DNS:\(host)")
        }
        try ca.issue(commonName: "localhost", subjectAltName: names.joined(separator: ","), usage: .server).write(to: directory, name: "server")
        try issueClient(name: "admin", role: .admin, by: ca)
        return true
    }

    /// Mints `<name>.pem` and `<name>-key.pem` from the CA and grants `role` to its identity.
    package func issueClient(name: String, role: Role) throws {
        try issueClient(name: name, role: role, by: CertificateAuthority(root: try IssuedCertificate.read(from: directory, name: "ca")))
    }

    private func issueClient(name: String, role: Role, by ca: CertificateAuthority) throws {
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }),
              !["ca", "server"].contains(name) else {
            throw PKIError(reason: "client name \"\(name)\" must be 1–64 letters, digits, - or _, and not ca or server")
        }
        try ca.issue(commonName: name, subjectAltName: "URI:\(Self.identity(of: name))", usage: .client).write(to: directory, name: name)
        var roles = try RoleMap.load(from: roleMapPath)
        roles.roles["uri:" + Self.identity(of: name)] = role
        try roles.save(to: roleMapPath)
    }
}

/// A PKI operation that cannot be done.
package struct PKIError: Error, CustomStringConvertible {
    let reason: String
    package var description: String { reason }
}
