import CBinderySockets
import Glibc

/// A parsed `host:port` listen address (`127.0.0.1:8443`, `[::1]:8443`, `0.0.0.0:0`).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// The host part, without brackets.
    public var host: String
    /// The port (0: any free port).
    public var port: UInt16
    /// True for an IPv6 host.
    public var isIPv6: Bool { host.contains(":") }

    /// Parses `text`, refusing anything but a numeric IPv4 or bracketed IPv6 address and a port.
    public init(_ text: String) throws {
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ListenAddressError(text: text, reason: "expected [ipv6]:port")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw ListenAddressError(text: text, reason: "expected host:port") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard let port = UInt16(portPart) else { throw ListenAddressError(text: text, reason: "port must be 0–65535") }
        host = String(hostPart)
        self.port = port
        var probe = in6_addr()
        var probe4 = in_addr()
        guard isIPv6 ? inet_pton(AF_INET6, host, &probe) == 1 : inet_pton(AF_INET, host, &probe4) == 1 else {
            throw ListenAddressError(text: text, reason: "host must be a numeric IPv4 or IPv6 address")
        }
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// A non-blocking listening socket with SO_REUSEPORT, so each event loop can have its own.
    func makeListener(port override: UInt16? = nil) throws -> (fd: Int32, port: UInt16) {
        let family = isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.last("socket", description) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        let port = override ?? self.port
        var result: Int32
        if isIPv6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            inet_pton(AF_INET6, host, &address.sin6_addr)
            result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            inet_pton(AF_INET, host, &address.sin_addr)
            result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard result == 0 else {
            let error = SocketError.last("bind", description)
            Glibc.close(fd)
            throw error
        }
        guard listen(fd, 4096) == 0 else {
            let error = SocketError.last("listen", description)
            Glibc.close(fd)
            throw error
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, SocketAddressText.port(of: bound))
    }
}

/// A listen address that does not parse.
public struct ListenAddressError: Error, CustomStringConvertible {
    /// The text given.
    public let text: String
    /// What is wrong.
    public let reason: String
    public var description: String { "listen address \"\(text)\": \(reason)" }
}

/// Formatting of socket addresses.
enum SocketAddressText {
    static func port(of storage: sockaddr_storage) -> UInt16 {
        var storage = storage
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    /// `a.b.c.d:port` or `[v6]:port`.
    static func describe(_ storage: sockaddr_storage) -> String {
        var storage = storage
        let family = Int32(storage.ss_family)
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        return withUnsafePointer(to: &storage) { pointer -> String in
            if family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    var copy = address.pointee.sin6_addr
                    inet_ntop(AF_INET6, &copy, &buffer, socklen_t(buffer.count))
                    return "[\(String(cString: buffer))]:\(UInt16(bigEndian: address.pointee.sin6_port))"
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                var copy = address.pointee.sin_addr
                inet_ntop(AF_INET, &copy, &buffer, socklen_t(buffer.count))
                return "\(String(cString: buffer)):\(UInt16(bigEndian: address.pointee.sin_port))"
            }
        }
    }
}
