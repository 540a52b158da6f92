import COpenSSL
import Foundation
import Glibc

/// A blocking TLS client for tests: connects to loopback, optionally with a client
/// certificate, sends raw bytes and reads raw HTTP responses.
final class TLSTestClient: @unchecked Sendable {
    private let context: OpaquePointer
    private let ssl: OpaquePointer
    let fd: Int32
    private var buffer: [UInt8] = []
    /// OpenSSL's reasons for the last failed read (a server's alert shows here).
    private(set) var lastError = ""

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// Connects and handshakes. `maxVersion` 0 lets OpenSSL choose; `groups` (OpenSSL syntax,
    /// e.g. `X448`) limits the key exchange groups offered.
    init(port: UInt16, ca: String, certificate: String? = nil, key: String? = nil, maxVersion: Int32 = 0,
         session: OpaquePointer? = nil, ipv6: Bool = false, groups: String? = nil) throws {
        context = SSL_CTX_new(TLS_client_method())!
        SSL_CTX_set_security_level(context, 0)
        _ = bindery_tls_set_versions(context, maxVersion == 0 ? TLS1_2_VERSION : TLS1_VERSION, maxVersion)
        if let groups, bindery_tls_set_groups(context, groups) != 1 {
            SSL_CTX_free(context)
            throw Failure(description: "SSL_CTX_set1_groups_list(\(groups)) failed: \(Self.errors())")
        }
        SSL_CTX_load_verify_locations(context, ca, nil)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let certificate, let key {
            SSL_CTX_use_certificate_chain_file(context, certificate)
            SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM)
        }
        fd = try Self.connect(port: port, ipv6: ipv6)
        ssl = SSL_new(context)!
        SSL_set_fd(ssl, fd)
        _ = bindery_tls_set_server_name(ssl, "localhost")
        if let session { SSL_set_session(ssl, session) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else { throw Failure(description: "handshake failed: \(Self.errors())") }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
        Glibc.close(fd)
    }

    static func connect(port: UInt16, ipv6: Bool = false) throws -> Int32 {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var result: Int32
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            inet_pton(AF_INET6, "::1", &address.sin6_addr)
            result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard result == 0 else {
            Glibc.close(fd)
            throw Failure(description: "connect failed: errno \(errno)")
        }
        return fd
    }

    static func errors() -> String {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            reasons.append(String(cString: text))
        }
        return reasons.joined(separator: "; ")
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        ERR_clear_error()
        var written = 0
        guard bytes.withUnsafeBytes({ SSL_write_ex(ssl, $0.baseAddress, $0.count, &written) }) == 1, written == bytes.count else {
            throw Failure(description: "write failed: \(Self.errors())")
        }
    }

    /// Sends each of `texts` as its own TLS record, all in one write(2): the server finds every
    /// record waiting at once, as from a client whose writes the network coalesced.
    func sendRecordsInOneWrite(_ texts: [String]) throws {
        guard let socketBIO = SSL_get_wbio(ssl), BIO_up_ref(socketBIO) == 1 else { throw Failure(description: "no write BIO") }
        let memory = BIO_new(BIO_s_mem())!
        SSL_set0_wbio(ssl, memory)  // takes `memory`; drops the SSL's own reference to the socket BIO
        defer { SSL_set0_wbio(ssl, socketBIO) }  // takes the reference counted up above
        for text in texts { try send(text) }
        var records = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(memory)))
        let count = records.withUnsafeMutableBytes { BIO_read(memory, $0.baseAddress, Int32($0.count)) }
        guard count == records.count, count > 0 else { throw Failure(description: "the records were not written: \(count)") }
        let written = records.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == count else { throw Failure(description: "write(2) sent \(written) of \(count) bytes: errno \(errno)") }
    }

    /// Reads more bytes; false at EOF or error.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16384)
        var count = 0
        ERR_clear_error()
        guard chunk.withUnsafeMutableBytes({ SSL_read_ex(ssl, $0.baseAddress, $0.count, &count) }) == 1 else {
            lastError = Self.errors()
            return false
        }
        buffer += chunk[0..<count]
        return true
    }

    /// A parsed response.
    struct Response {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// Reads one response (Content-Length framed); nil when the connection ends first.
    func readResponse(toHead: Bool = false) -> Response? {
        while true {
            if let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                let lines = head.components(separatedBy: "\r\n")
                let status = Int(lines[0].split(separator: " ")[1]) ?? 0
                var headers: [String: String] = [:]
                for line in lines.dropFirst() {
                    if let colon = line.firstIndex(of: ":") {
                        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                let length = toHead ? 0 : Int(headers["content-length"] ?? "0") ?? 0
                while buffer.count < end.upperBound + length { if !fill() { return nil } }
                let body = String(decoding: buffer[end.upperBound..<(end.upperBound + length)], as: UTF8.self)
                buffer.removeFirst(end.upperBound + length)
                return Response(status: status, headers: headers, body: body)
            }
            if !fill() { return nil }
        }
    }

    /// Reads one response with a chunked body, decoding the chunks; nil when the connection ends
    /// before the last chunk. `onRead` sees the body bytes decoded so far after each read.
    func readChunkedResponse(onRead: (Int) -> Void = { _ in }) -> Response? {
        guard let head = readResponse(toHead: true) else { return nil }
        var body: [UInt8] = []
        func line() -> [UInt8]? {
            while true {
                if let end = buffer.firstRange(of: [13, 10]) {
                    let text = Array(buffer[..<end.lowerBound])
                    buffer.removeFirst(end.upperBound)
                    return text
                }
                guard fill() else { return nil }
                onRead(body.count)
            }
        }
        while true {
            guard let sizeLine = line(), let size = Int(String(decoding: sizeLine, as: UTF8.self), radix: 16) else { return nil }
            if size == 0 {
                guard let trailer = line(), trailer.isEmpty else { return nil }
                return Response(status: head.status, headers: head.headers, body: String(decoding: body, as: UTF8.self))
            }
            while buffer.count < size + 2 {
                guard fill() else { return nil }
                onRead(body.count + min(buffer.count, size))
            }
            guard buffer[size] == 13, buffer[size + 1] == 10 else { return nil }
            body += buffer[..<size]
            buffer.removeFirst(size + 2)
        }
    }

    /// Reads until the server closes; what came (for bodies that end with the connection).
    func readToEnd() -> [UInt8] {
        while fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    /// True when the server has closed the connection (read returns EOF or an error).
    func isClosedByServer() -> Bool { buffer.isEmpty && !fill() }

    /// The session, for resumption (caller frees with SSL_SESSION_free).
    func session() -> OpaquePointer? { SSL_get1_session(ssl) }

    var isResumed: Bool { SSL_session_reused(ssl) == 1 }

    /// The server certificate's subject CN.
    var serverCommonName: String {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return "" }
        defer { X509_free(certificate) }
        var name = [CChar](repeating: 0, count: 256)
        X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, &name, 256)
        return String(cString: name)
    }
}
