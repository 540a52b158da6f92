import COpenSSL
import Foundation
import Glibc

/// The Ed25519 key that signs audit checkpoints: `<data-dir>/audit-signing-key`, the 32-byte
/// private key as hex, mode 0600, made at first use. Losing it loses nothing but the ability
/// to sign as this host; a new key's checkpoints are told apart by their public key.
public struct AuditSigningKey: Sendable {
    /// The public key (32 bytes), which every checkpoint carries.
    public let publicKey: [UInt8]
    private let seed: [UInt8]

    /// The file name in the data dir.
    public static let fileName = "audit-signing-key"

    /// The key in `dataDirectory`, made (and made durable) when there is none and `create`.
    public static func load(dataDirectory: String, create: Bool) throws -> AuditSigningKey? {
        let path = dataDirectory + "/" + fileName
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard hex.utf8.count == 64, let seed = Self.bytes(hex: hex) else {
                throw StoreError.signingKey(path: path, reason: "not a 64-digit hex Ed25519 private key")
            }
            return try AuditSigningKey(seed: seed)
        }
        guard create else { return nil }
        var seed = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&seed, 32) == 1 else { throw StoreError.signingKey(path: path, reason: "RAND_bytes failed") }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.signingKey(path: path, reason: "open(O_CREAT|O_EXCL) failed: errno \(errno)") }
        defer { Glibc.close(fd) }
        let text = Array((seed.map { String(format: "%02x", $0) }.joined() + "\n").utf8)
        guard Glibc.write(fd, text, text.count) == text.count, fsync(fd) == 0 else {
            throw StoreError.signingKey(path: path, reason: "write or fsync failed: errno \(errno)")
        }
        return try AuditSigningKey(seed: seed)
    }

    private init(seed: [UInt8]) throws {
        var publicKey = [UInt8](repeating: 0, count: 32)
        guard bindery_ed25519_public_key(seed, &publicKey) == 1 else { throw StoreError.signingKey(path: Self.fileName, reason: "not an Ed25519 private key") }
        self.seed = seed
        self.publicKey = publicKey
    }

    /// The Ed25519 signature (64 bytes) of `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: 64)
        let ok = message.withUnsafeBytes { bindery_ed25519_sign(seed, $0.baseAddress, $0.count, &signature) }
        precondition(ok == 1, "Ed25519 signing failed: libcrypto is unusable")
        return signature
    }

    /// Whether `signature` is `publicKey`'s signature of `message`.
    public static func isValid(signature: [UInt8], of message: [UInt8], by publicKey: [UInt8]) -> Bool {
        guard signature.count == 64, publicKey.count == 32 else { return false }
        return message.withUnsafeBytes { bindery_ed25519_verify(publicKey, $0.baseAddress, $0.count, signature) } == 1
    }

    private static func bytes(hex: String) -> [UInt8]? {
        var out: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = high.hexDigitValue, let l = low.hexDigitValue else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }
}
