import Foundation
import Glibc

/// A VM's descriptors received over the VMM socket, and the connection that holds them:
/// Bindery counts the VM as held while it stays open.
public struct VMMAttachment: Sendable {
    /// The connection (keep it open while the VM runs).
    public let connection: UnixSeqpacket
    /// What each descriptor is.
    public let manifest: HandOffManifest
    /// The descriptors, in the manifest's order.
    public let descriptors: [Int32]

    /// Why an attach failed.
    public enum Failure: Error, CustomStringConvertible, Sendable {
        /// The socket call failed.
        case socket(UnixSeqpacket.Failure)
        /// Bindery refused, and said why.
        case refused(String)
        /// The answer made no sense.
        case malformed(String)

        /// What happened.
        public var description: String {
            switch self {
            case let .socket(failure): "VMM socket: \(failure)"
            case let .refused(reason): "Bindery refused the attach: \(reason)"
            case let .malformed(detail): "VMM socket: unexpected answer: \(detail)"
            }
        }
    }

    /// Connects to `socket`, presents `token` for `vm` and receives the descriptors.
    public static func attach(socket path: String, vm: String, token: String) throws(Failure) -> VMMAttachment {
        let connection: UnixSeqpacket
        do { connection = try UnixSeqpacket.connect(to: path) } catch { throw .socket(error) }
        do throws(Failure) {
            let request = (try? JSONEncoder().encode(AttachRequest(vm: vm, token: token))) ?? Data()
            do { try connection.send(Array(request)) } catch { throw .socket(error) }
            let answer: (bytes: [UInt8], descriptors: [Int32])?
            do { answer = try connection.receive(capacity: VMMSocketServer.manifestLimit, maxDescriptors: 253) } catch { throw .socket(error) }
            guard let answer else { throw .malformed("the connection closed without an answer") }
            if let manifest = try? JSONDecoder().decode(HandOffManifest.self, from: Data(answer.bytes)) {
                guard manifest.descriptors.count == answer.descriptors.count else {
                    answer.descriptors.forEach { _ = Glibc.close($0) }
                    throw .malformed("the manifest names \(manifest.descriptors.count) descriptors, \(answer.descriptors.count) came")
                }
                return VMMAttachment(connection: connection, manifest: manifest, descriptors: answer.descriptors)
            }
            answer.descriptors.forEach { _ = Glibc.close($0) }
            if let refusal = try? JSONDecoder().decode(AttachRefusal.self, from: Data(answer.bytes)) { throw .refused(refusal.error) }
            throw .malformed(String(decoding: answer.bytes.prefix(200), as: UTF8.self))
        } catch {
            connection.close()
            throw error
        }
    }

    /// Closes the descriptors and the connection (Bindery records the detach).
    public func close() {
        descriptors.forEach { _ = Glibc.close($0) }
        connection.close()
    }
}
