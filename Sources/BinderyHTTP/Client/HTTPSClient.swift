import COpenSSL
import Foundation
import Glibc

/// A small blocking HTTPS/1.1 client with a client certificate, for the `bindery` command's
/// client subcommands: one request per connection, Content-Length framed responses.
public struct HTTPSClient: Sendable {
    /// `https://host:port`.
    public let server: URL
    /// CA bundle that verifies the server.
    public let caPath: String
    /// Client certificate and key.
    public let certificatePath: String, keyPath: String

    /// A client for `server` presenting `certificatePath`.
    public init(server: URL, caPath: String, certificatePath: String, keyPath: String) {
        self.server = server
        self.caPath = caPath
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }

    /// A response.
    public struct Response: Sendable {
        /// Status code.
        public var status: Int
        /// Header fields, names lowercased.
        public var headers: [String: String]
        /// Body bytes.
        public var body: [UInt8]
    }

    /// A client failure, naming the step and the reason.
    public struct Failure: Error, CustomStringConvertible {
        /// What failed and why.
        public let description: String
    }

    /// Sends `method path` with an optional JSON body and returns the response.
    public func send(_ method: String, _ path: String, json body: [UInt8]? = nil, headers extra: [(String, String)] = []) throws -> Response {
        guard server.scheme == "https", let host = server.host else { throw Failure(description: "server must be https://host:port, not \(server)") }
        let port = UInt16(server.port ?? 443)
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TLSError.drain("SSL_CTX_new") }
        defer { SSL_CTX_free(context) }
        _ = bindery_tls_set_versions(context, TLS1_2_VERSION, 0)
        guard SSL_CTX_load_verify_locations(context, caPath, nil) == 1 else { throw TLSError.drain("load CA \(caPath)") }
        guard SSL_CTX_use_certificate_chain_file(context, certificatePath) == 1 else { throw TLSError.drain("load certificate \(certificatePath)") }
        guard SSL_CTX_use_PrivateKey_file(context, keyPath, SSL_FILETYPE_PEM) == 1 else { throw TLSError.drain("load key \(keyPath)") }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)

        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), String(port), &hints, &found) == 0, let first = found else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(found) }
        var fd: Int32 = -1
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let entry = candidate, fd < 0 {
            let attempt = socket(entry.pointee.ai_family, entry.pointee.ai_socktype, entry.pointee.ai_protocol)
            if attempt >= 0, connect(attempt, entry.pointee.ai_addr, entry.pointee.ai_addrlen) == 0 { fd = attempt } else if attempt >= 0 { close(attempt) }
            candidate = entry.pointee.ai_next
        }
        guard fd >= 0 else { throw Failure(description: "connect to \(host):\(port) failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let ssl = SSL_new(context) else { throw TLSError.drain("SSL_new") }
        defer { SSL_free(ssl) }
        SSL_set_fd(ssl, fd)
        _ = bindery_tls_set_server_name(ssl, host)
        _ = SSL_set1_host(ssl, host)
        guard SSL_connect(ssl) == 1 else { throw TLSError.drain("TLS handshake with \(host):\(port)") }

        var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nAccept: application/json\r\n"
        for (name, value) in extra { request += "\(name): \(value)\r\n" }
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        var bytes = Array((request + "\r\n").utf8) + (body ?? [])
        var written = 0
        guard bytes.withUnsafeMutableBytes({ SSL_write_ex(ssl, $0.baseAddress, $0.count, &written) }) == 1 else { throw TLSError.drain("send") }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            var count = 0
            if chunk.withUnsafeMutableBytes({ SSL_read_ex(ssl, $0.baseAddress, $0.count, &count) }) != 1 { break }
            received += chunk[0..<count]
            if received.count > 256 << 20 { throw Failure(description: "response larger than 256 MiB") }
        }
        guard let split = received.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw Failure(description: "no HTTP response from \(host):\(port) (is the client certificate accepted?)")
        }
        let head = String(decoding: received[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return Response(status: status, headers: fields, body: Array(received[split.upperBound...]))
    }
}
