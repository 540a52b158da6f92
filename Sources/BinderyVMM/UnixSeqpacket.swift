import CBinderySockets
import Foundation
import Glibc

/// A Unix `SOCK_SEQPACKET` socket: message boundaries kept, descriptors passed as
/// `SCM_RIGHTS`, and the peer's credentials known.
public struct UnixSeqpacket: Sendable {
    /// The descriptor.
    public let fd: Int32

    /// A failed socket call, with its errno.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// The call.
        public var call: String
        /// errno.
        public var errno: Int32
        /// The socket path, when there is one.
        public var path: String?
        /// The call, the path and the errno's text.
        public var description: String {
            "\(call)\(path.map { " \($0)" } ?? ""): \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }

    /// Wraps an open socket.
    public init(fd: Int32) { self.fd = fd }

    private static func makeAddress(_ path: String) throws(Failure) -> (sockaddr_un, socklen_t) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure(call: "socket path", errno: ENAMETOOLONG, path: path)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return (address, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1))
    }

    /// Binds and listens at `path` (a stale socket file there is replaced; anything else is
    /// refused), with `mode` and, when given, group `group`.
    public static func listen(at path: String, mode: mode_t, group: gid_t?, backlog: Int32 = 64) throws(Failure) -> UnixSeqpacket {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw Failure(call: "bind (not a socket in the way)", errno: EEXIST, path: path) }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(call: "socket(AF_UNIX, SOCK_SEQPACKET)", errno: errno, path: path) }
        do throws(Failure) {
            var (address, length) = try makeAddress(path)
            // Created with no access for anyone, then opened up to `mode`: no window where
            // another user can connect.
            let previous = umask(0o777)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            let bindErrno = errno
            umask(previous)
            guard bound == 0 else { throw Failure(call: "bind", errno: bindErrno, path: path) }
            if let group, chown(path, uid_t.max, group) != 0 { throw Failure(call: "chown", errno: errno, path: path) }
            guard chmod(path, mode) == 0 else { throw Failure(call: "chmod", errno: errno, path: path) }
            guard Glibc.listen(fd, backlog) == 0 else { throw Failure(call: "listen", errno: errno, path: path) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return UnixSeqpacket(fd: fd)
    }

    /// Connects to `path`.
    public static func connect(to path: String) throws(Failure) -> UnixSeqpacket {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(call: "socket(AF_UNIX, SOCK_SEQPACKET)", errno: errno, path: path) }
        do throws(Failure) {
            var (address, length) = try makeAddress(path)
            let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
            guard result == 0 else { throw Failure(call: "connect", errno: errno, path: path) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return UnixSeqpacket(fd: fd)
    }

    /// Accepts a connection (blocking), close-on-exec.
    public func accept() throws(Failure) -> UnixSeqpacket {
        while true {
            let client = bindery_accept_local(fd)
            if client >= 0 { return UnixSeqpacket(fd: client) }
            if errno != EINTR { throw Failure(call: "accept4", errno: errno) }
        }
    }

    /// The peer's pid, uid and gid (`SO_PEERCRED`).
    public func peerCredentials() throws(Failure) -> (pid: Int32, uid: UInt32, gid: UInt32) {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        guard bindery_peer_credentials(fd, &pid, &uid, &gid) == 0 else { throw Failure(call: "getsockopt(SO_PEERCRED)", errno: errno) }
        return (pid, uid, gid)
    }

    /// Sends one message with `descriptors` attached.
    public func send(_ bytes: [UInt8], descriptors: [Int32] = []) throws(Failure) {
        let sent = bytes.withUnsafeBytes { data in
            descriptors.withUnsafeBufferPointer { fds in
                bindery_send_with_fds(fd, nil, data.baseAddress, data.count, fds.baseAddress, Int32(fds.count))
            }
        }
        guard sent == bytes.count else { throw Failure(call: "sendmsg", errno: sent < 0 ? errno : EMSGSIZE) }
    }

    /// Receives one message of at most `capacity` bytes and up to `maxDescriptors`
    /// descriptors (close-on-exec). Nil at end of stream. A message or descriptor list that
    /// did not fit is an error (EMSGSIZE), its descriptors closed.
    public func receive(capacity: Int, maxDescriptors: Int = 0) throws(Failure) -> (bytes: [UInt8], descriptors: [Int32])? {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var fds = [Int32](repeating: -1, count: max(maxDescriptors, 1))
        var received: Int32 = 0, truncated: Int32 = 0
        let count = buffer.withUnsafeMutableBytes { data in
            fds.withUnsafeMutableBufferPointer { fdBuffer in
                bindery_receive_with_fds(fd, data.baseAddress, data.count, fdBuffer.baseAddress, Int32(maxDescriptors), &received, &truncated)
            }
        }
        let descriptors = Array(fds.prefix(Int(received)))
        if count < 0 { throw Failure(call: "recvmsg", errno: errno) }
        if truncated != 0 {
            descriptors.forEach { _ = Glibc.close($0) }
            throw Failure(call: "recvmsg (message or descriptors cut short)", errno: EMSGSIZE)
        }
        if count == 0 && descriptors.isEmpty { return nil }
        return (Array(buffer.prefix(count)), descriptors)
    }

    /// Bounds how long a receive waits.
    public func setReceiveTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Shuts both directions down (wakes a blocked receive).
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Closes it.
    public func close() { _ = Glibc.close(fd) }
}
