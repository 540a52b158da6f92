import COpenSSL
import Foundation

/// SHA-256 from the system libcrypto.
public enum SHA256 {
    /// The 32-byte digest of `bytes`.
    public static func digest(_ bytes: some ContiguousBytes) -> Data {
        var digest = Data(count: 32)
        let ok = bytes.withUnsafeBytes { input in
            digest.withUnsafeMutableBytes { output in
                bindery_sha256(input.baseAddress, input.count, output.bindMemory(to: UInt8.self).baseAddress)
            }
        }
        precondition(ok == 1, "EVP_Digest(SHA-256) failed: libcrypto is unusable")
        return digest
    }

    /// The digest of `text`'s UTF-8 bytes, as lowercase hex.
    public static func hex(of text: String) -> String {
        digest(Data(text.utf8)).hexString
    }
}
