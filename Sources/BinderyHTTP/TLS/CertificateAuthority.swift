import COpenSSL
import Foundation

/// A certificate and its private key, as PEM.
public struct IssuedCertificate: Sendable, Equatable {
    /// The certificate.
    public var certificatePEM: String
    /// The private key (P-256).
    public var privateKeyPEM: String
}

/// A small certificate authority: enough to make a development PKI and client certificates
/// for people and tests. Not a production CA (no revocation database, no policy).
public struct CertificateAuthority: Sendable {
    /// The CA's own certificate and key.
    public let root: IssuedCertificate

    /// What a certificate is for.
    public enum Usage: Int32, Sendable {
        /// A TLS server (extendedKeyUsage serverAuth).
        case server = 1
        /// A TLS client (extendedKeyUsage clientAuth).
        case client = 2
    }

    /// The longest a server or client certificate may live: a year, as browsers and the
    /// CA/Browser Forum now expect of server certificates (398 days at most).
    public static let maximumValidityDays = 365

    /// A CA from an existing certificate and key.
    public init(root: IssuedCertificate) { self.root = root }

    /// A new self-signed CA named `commonName`.
    public static func make(commonName: String, days: Int = 3650) throws -> CertificateAuthority {
        CertificateAuthority(root: try issue(caCertificate: nil, caKey: nil, commonName: commonName, subjectAltName: nil, usage: 0, days: days))
    }

    /// A certificate for `commonName` with `subjectAltName` (OpenSSL syntax:
    /// `DNS:localhost,IP:127.0.0.1,URI:spiffe://...`), signed by this CA, valid for `days`
    /// (1 to `maximumValidityDays`).
    public func issue(commonName: String, subjectAltName: String?, usage: Usage,
                      days: Int = Self.maximumValidityDays) throws -> IssuedCertificate {
        guard (1...Self.maximumValidityDays).contains(days) else {
            throw CertificateRequestError(commonName: commonName,
                                          reason: "validity of \(days) days is outside 1...\(Self.maximumValidityDays)")
        }
        return try Self.issue(caCertificate: root.certificatePEM, caKey: root.privateKeyPEM, commonName: commonName,
                       subjectAltName: subjectAltName, usage: usage.rawValue, days: days)
    }

    private static func issue(caCertificate: String?, caKey: String?, commonName: String, subjectAltName: String?,
                              usage: Int32, days: Int) throws -> IssuedCertificate {
        ERR_clear_error()
        var certificate: UnsafeMutablePointer<CChar>?
        var key: UnsafeMutablePointer<CChar>?
        guard bindery_pki_issue(caCertificate, caKey, commonName, subjectAltName, usage, Int32(days), &certificate, &key) == 1,
              let certificate, let key else {
            throw TLSError.drain("bindery_pki_issue(\(commonName))")
        }
        defer {
            free(certificate)
            free(key)
        }
        return IssuedCertificate(certificatePEM: String(cString: certificate), privateKeyPEM: String(cString: key))
    }
}

extension IssuedCertificate {
    /// Writes `<directory>/<name>.pem` and `<name>-key.pem` (mode 0600 for the key).
    public func write(to directory: String, name: String) throws {
        let certificatePath = "\(directory)/\(name).pem", keyPath = "\(directory)/\(name)-key.pem"
        try Data(certificatePEM.utf8).write(to: URL(fileURLWithPath: certificatePath), options: .atomic)
        FileManager.default.createFile(atPath: keyPath, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: keyPath))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(privateKeyPEM.utf8))
        try handle.close()
    }

    /// Reads `<directory>/<name>.pem` and `<name>-key.pem`.
    public static func read(from directory: String, name: String) throws -> IssuedCertificate {
        IssuedCertificate(certificatePEM: try String(contentsOfFile: "\(directory)/\(name).pem", encoding: .utf8),
                          privateKeyPEM: try String(contentsOfFile: "\(directory)/\(name)-key.pem", encoding: .utf8))
    }
}
