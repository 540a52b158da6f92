@testable import BinderyHTTP
import COpenSSL
import Foundation
import Glibc
import XCTest

/// Answers with who called, what, and the body, on the event loop.
struct EchoHandler: HTTPHandler {
    func respond(to request: HTTPRequest) async -> HTTPResponse {
        try? await Task.sleep(nanoseconds: 20_000_000)
        return echo(request)
    }
    func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
        request.head.path.hasPrefix("/slow") ? nil : echo(request)
    }
    private func echo(_ request: HTTPRequest) -> HTTPResponse {
        .text(200, "\(request.peer.identity) \(request.head.method) \(request.head.path) \(request.body.count) \(String(decoding: request.body, as: UTF8.self))")
    }
}

/// Takes its time, as a Swift task (the async path).
struct SlowHandler: HTTPHandler {
    func respond(to request: HTTPRequest) async -> HTTPResponse {
        try? await Task.sleep(nanoseconds: 300_000_000)
        return .text(200, "slow \(request.head.path)")
    }
}

final class HTTPServerTests: XCTestCase {
    var pki: TestPKI!
    var server: HTTPServer?

    override func setUpWithError() throws {
        pki = try TestPKI()
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = min(limit.rlim_max, 65536)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    override func tearDown() {
        server?.shutdown()
        server = nil
        pki.remove()
    }

    func start(_ handler: any HTTPHandler = EchoHandler(), listen: [String] = ["127.0.0.1:0"], log: LogLines? = nil,
               configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> UInt16 {
        var configuration = HTTPServerConfiguration(
            listen: listen,
            tls: TLSConfiguration(certificatePath: pki.path("server"), privateKeyPath: pki.key("server"), clientCABundlePath: pki.path("ca")))
        configuration.eventLoops = 2
        configure(&configuration)
        let server = try HTTPServer(configuration: configuration, handler: handler) { log?.append($0) }
        try server.start()
        self.server = server
        return server.boundAddresses[0].port
    }

    func client(_ port: UInt16, as name: String = "uri-client", maxVersion: Int32 = 0, ipv6: Bool = false,
                groups: String? = nil) throws -> TLSTestClient {
        try TLSTestClient(port: port, ca: pki.path("ca"), certificate: pki.path(name), key: pki.key(name), maxVersion: maxVersion,
                          ipv6: ipv6, groups: groups)
    }

    func get(_ client: TLSTestClient, _ path: String = "/") throws -> TLSTestClient.Response? {
        try client.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
        return client.readResponse()
    }

    /// Polls `condition` (for effects of closes the server makes asynchronously); fails after 10 s.
    func eventually(_ what: String, _ condition: () -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(10)
        while !condition() {
            if Date() > deadline { return XCTFail("never happened: \(what)", file: file, line: line) }
            usleep(10_000)
        }
    }

    // MARK: - Mutual TLS and identity

    func testIdentityComesFromURISANThenDNSSANThenCN() throws {
        let port = try start()
        XCTAssertEqual(try get(try client(port, as: "uri-client"))?.body, "spiffe://bindery.test/orchestrator GET / 0 ")
        XCTAssertEqual(try get(try client(port, as: "dns-client"))?.body, "nova.example GET / 0 ")
        XCTAssertEqual(try get(try client(port, as: "cn-client"))?.body, "auditor-7 GET / 0 ")
    }

    func testResponseHeaders() throws {
        let port = try start()
        let response = try XCTUnwrap(try get(try client(port)))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["server"], "bindery")
        XCTAssertNotNil(response.headers["date"])
        XCTAssertEqual(response.headers["content-length"], String(response.body.utf8.count))
    }

    func testClientWithoutCertificateIsRefused() throws {
        let port = try start()
        XCTAssertEqual(try get(try client(port))?.status, 200, "the server is up and serves a certified client")
        assertRefused(port: port, certificate: nil, alert: "certificate required")
    }

    func testClientFromAnotherCAIsRefused() throws {
        let port = try start()
        XCTAssertEqual(try get(try client(port))?.status, 200, "the server is up and serves a certified client")
        assertRefused(port: port, certificate: "stranger", alert: "unknown ca")
    }

    /// The server must refuse with a TLS alert: during the handshake (TLS 1.2 style) or, since a
    /// TLS 1.3 client finishes its side first, on the first read. A refused TCP connect fails too.
    private func assertRefused(port: UInt16, certificate: String?, alert: String, line: UInt = #line) {
        let refusal: String
        do {
            let peer = try TLSTestClient(port: port, ca: pki.path("ca"), certificate: certificate.map(pki.path),
                                         key: certificate.map(pki.key))
            try? peer.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            XCTAssertNil(peer.readResponse(), "no response without an acceptable certificate", line: line)
            refusal = peer.lastError
        } catch {
            refusal = "\(error)"
            XCTAssertTrue(refusal.hasPrefix("handshake failed"), "refused by the handshake, not the socket: \(refusal)", line: line)
        }
        XCTAssertTrue(refusal.contains(alert), "the server's alert says \(alert): \(refusal)", line: line)
    }

    func testTLS11IsRefused() throws {
        let port = try start()
        XCTAssertThrowsError(try client(port, maxVersion: TLS1_1_VERSION)) { error in
            XCTAssertTrue("\(error)".contains("handshake failed"), "\(error)")
        }
        XCTAssertNotNil(try get(try client(port, maxVersion: TLS1_2_VERSION)), "TLS 1.2 is accepted")
    }

    func testIPv6Listener() throws {
        let port = try start(listen: ["[::1]:0"])
        XCTAssertEqual(try get(try client(port, ipv6: true))?.status, 200)
    }

    func testSessionResumptionWithTickets() throws {
        let port = try start()
        let first = try client(port, maxVersion: TLS1_2_VERSION)
        XCTAssertNotNil(try get(first))
        let session = try XCTUnwrap(first.session())
        defer { SSL_SESSION_free(session) }
        let second = try TLSTestClient(port: port, ca: pki.path("ca"), certificate: pki.path("uri-client"), key: pki.key("uri-client"),
                                       maxVersion: TLS1_2_VERSION, session: session)
        XCTAssertTrue(second.isResumed)
        XCTAssertEqual(try get(second)?.body, "spiffe://bindery.test/orchestrator GET / 0 ", "identity survives resumption")
    }

    func testReloadServesTheNewCertificateAndKeepsEstablishedConnections() throws {
        let port = try start()
        let established = try client(port)
        XCTAssertEqual(established.serverCommonName, "localhost")
        try pki.issue("server", by: "ca", subject: "/CN=localhost-renewed", extensions: "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth")
        try server!.reloadTLS()
        XCTAssertEqual(try client(port).serverCommonName, "localhost-renewed")
        XCTAssertEqual(try get(established)?.status, 200, "the old connection still works")

        try "not a certificate".write(toFile: pki.path("server"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try server!.reloadTLS()) { XCTAssertTrue("\($0)".contains("SSL_CTX_use_certificate_chain_file"), "\($0)") }
        XCTAssertEqual(try client(port).serverCommonName, "localhost-renewed", "a bad file keeps the old certificate")
    }

    func testSIGHUPReloadsCertificates() throws {
        let port = try start()
        server!.installSignalHandlers(shutdownOn: [])
        try pki.issue("server", by: "ca", subject: "/CN=after-sighup", extensions: "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth")
        kill(getpid(), SIGHUP)
        eventually("a new connection sees the reloaded certificate") { (try? client(port).serverCommonName) == "after-sighup" }
    }

    func testRevokedClientIsRefusedWhenACRLIsConfigured() throws {
        let crl = try pki.revoke("dns-client")
        let port = try start { $0.tls.crlPath = crl }
        XCTAssertEqual(try get(try client(port, as: "uri-client"))?.status, 200, "a certificate not on the CRL is accepted")
        do {
            let revoked = try client(port, as: "dns-client")
            XCTAssertNil(try? get(revoked), "a revoked certificate gets no answer")
        } catch {
            XCTAssertTrue("\(error)".hasPrefix("handshake failed"), "refused in the handshake: \(error)")
        }
    }

    func testRevocationAppliesToTheNextRequestOnOpenAndResumedConnections() throws {
        let crl = try pki.revoke("cn-client")   // a CRL that does not list dns-client yet
        let port = try start { $0.tls.crlPath = crl }
        let open = try client(port, as: "dns-client", maxVersion: TLS1_2_VERSION)
        XCTAssertEqual(try get(open)?.status, 200)
        let session = try XCTUnwrap(open.session())
        defer { SSL_SESSION_free(session) }

        XCTAssertEqual(try pki.revoke("dns-client"), crl, "the same CRL file, now listing dns-client")
        try server!.reloadTLS()

        let next = try get(open)
        XCTAssertEqual(next?.status, 403, "the next request on a connection opened before the revocation")
        XCTAssertTrue(open.isClosedByServer(), "and the connection is closed")
        let resumed = try TLSTestClient(port: port, ca: pki.path("ca"), certificate: pki.path("dns-client"), key: pki.key("dns-client"),
                                        maxVersion: TLS1_2_VERSION, session: session)
        XCTAssertTrue(resumed.isResumed, "a resumed session skips chain verification")
        XCTAssertEqual(try get(resumed)?.status, 403, "yet its first request is refused")
        XCTAssertEqual(try get(try client(port, as: "uri-client"))?.status, 200, "others are served")
    }

    func testHandshakeAndKeepAliveDeadlinesCloseConnections() throws {
        let port = try start {
            $0.handshakeTimeout = .milliseconds(300)
            $0.keepAliveTimeout = .milliseconds(300)
        }
        let silent = try TLSTestClient.connect(port: port)  // TCP only: never says hello
        defer { Glibc.close(silent) }
        let idle = try client(port)
        XCTAssertEqual(try get(idle)?.status, 200)
        XCTAssertTrue(idle.isClosedByServer(), "closed after the keep-alive deadline")
        var byte: UInt8 = 0
        XCTAssertEqual(read(silent, &byte, 1), 0, "closed after the handshake deadline")
    }

    // MARK: - HTTP behaviour

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let port = try start()
        let connection = try client(port)
        try connection.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /slow/b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator GET /a 0 ")
        XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator GET /slow/b 0 ")
        XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator POST /c 2 hi")
    }

    func testChunkedBodyAndExpectContinue() throws {
        let port = try start()
        let connection = try client(port)
        try connection.send("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator POST /x 5 abcde")
        try connection.send("PUT /y HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        XCTAssertEqual(connection.readResponse()?.status, 100)
        try connection.send("body")
        XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator PUT /y 4 body")
    }

    func testMalformedRequestGetsProblemAndClose() throws {
        let port = try start()
        let connection = try client(port)
        try connection.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
        let response = try XCTUnwrap(connection.readResponse())
        XCTAssertEqual(response.status, 400)
        XCTAssertEqual(response.headers["content-type"], "application/problem+json")
        XCTAssertEqual(response.headers["connection"], "close")
        XCTAssertTrue(response.body.contains("both Content-Length and Transfer-Encoding"))
        XCTAssertTrue(connection.isClosedByServer())
    }

    func testOversizedBodyIs413BeforeTheBodyIsSent() throws {
        let port = try start()
        let connection = try client(port)
        try connection.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
        XCTAssertEqual(connection.readResponse()?.status, 413)
    }

    func testHTTP10ClosesUnlessKeepAlive() throws {
        let port = try start()
        let once = try client(port)
        try once.send("GET / HTTP/1.0\r\n\r\n")
        XCTAssertEqual(once.readResponse()?.status, 200)
        XCTAssertTrue(once.isClosedByServer())
        let kept = try client(port)
        try kept.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(kept.readResponse()?.headers["connection"], "keep-alive")
        try kept.send("GET / HTTP/1.0\r\n\r\n")
        XCTAssertEqual(kept.readResponse()?.status, 200)
    }

    func testUnknownMethodsReachTheHandler() throws {
        let port = try start()
        let connection = try client(port)
        try connection.send("PROPFIND /x HTTP/1.1\r\nHost: x\r\n\r\nTRACE /y HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator PROPFIND /x 0 ")
        XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator TRACE /y 0 ", "the connection stays open")
    }

    func testHeadHasNoBody() throws {
        let port = try start()
        let connection = try client(port)
        try connection.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try XCTUnwrap(connection.readResponse(toHead: true))
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.headers["content-length"], String("spiffe://bindery.test/orchestrator HEAD / 0 ".utf8.count))
        // No body bytes followed the HEAD response: the next bytes are the GET's response.
        XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator GET /next 0 ")
    }

    // MARK: - Load, hangups and slow clients

    func testThousandConcurrentConnections() throws {
        let port = try start()
        let clients = try (0..<1000).map { _ in try client(port) }
        for (index, connection) in clients.enumerated() {
            try connection.send("GET /\(index) HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        for (index, connection) in clients.enumerated() {
            XCTAssertEqual(connection.readResponse()?.body, "spiffe://bindery.test/orchestrator GET /\(index) 0 ")
        }
        XCTAssertEqual(server!.connectionCount, 1000)
    }

    func testHangupsMidHandshakeHeadersAndBodyLeaveTheServerServing() throws {
        let port = try start()
        for _ in 0..<20 {
            let raw = try TLSTestClient.connect(port: port)
            _ = write(raw, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01], 6)  // a ClientHello that stops
            Glibc.close(raw)
            let headers = try client(port)
            try headers.send("GET / HTTP/1.1\r\nHost: x\r\nX-Half: ")
            let body = try client(port)
            try body.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly some")
        }
        XCTAssertEqual(try get(try client(port))?.status, 200)
        eventually("every hung-up connection is closed") { server!.connectionCount == 0 }
    }

    func testSlowClientsDoNotStarveOthers() throws {
        let port = try start { $0.headerTimeout = .seconds(3) }
        let slow = try (0..<100).map { _ in try client(port) }
        let dripping = DispatchQueue(label: "drip")
        let stop = DispatchSemaphore(value: 0)
        dripping.async {
            let request = Array("GET / HTTP/1.1\r\nHost: x\r\nX-Drip: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 1000)
            for byte in request {
                for connection in slow { try? connection.send([byte]) }
                if stop.wait(timeout: .now() + .milliseconds(100)) == .success { return }
            }
        }
        // While the slow clients drip, normal clients are answered.
        for index in 0..<50 {
            XCTAssertEqual(try get(try client(port), "/fast\(index)")?.status, 200)
        }
        // The header deadline is for the whole section: the drippers get 408 and are closed.
        let timedOut = slow[0].readResponse()
        XCTAssertEqual(timedOut?.status, 408)
        stop.signal()
    }

    func testConnectionCapAnswers503() throws {
        let port = try start { $0.maxConnections = 5 }
        let held = try (0..<5).map { _ in try client(port) }
        for connection in held { XCTAssertEqual(try get(connection)?.status, 200) }
        let extra = try client(port)
        let refused = extra.readResponse()
        XCTAssertEqual(refused?.status, 503)
    }

    func testGracefulShutdownFinishesRequestsInFlight() throws {
        let port = try start(SlowHandler())
        let busy = try client(port)
        try busy.send("GET /work HTTP/1.1\r\nHost: x\r\n\r\n")
        let idle = try client(port)
        // Shut down only once the slow request is in flight (a state, not a sleep).
        eventually("the slow request is in flight") { server!.inFlight.current == 1 }
        let stopped = DispatchSemaphore(value: 0)
        let running = server!
        DispatchQueue.global().async {
            running.shutdown()
            stopped.signal()
        }
        let response = busy.readResponse()
        XCTAssertEqual(response?.body, "slow /work")
        XCTAssertEqual(response?.headers["connection"], "close")
        XCTAssertTrue(idle.isClosedByServer())
        XCTAssertEqual(stopped.wait(timeout: .now() + 10), .success)
        XCTAssertThrowsError(try TLSTestClient.connect(port: port), "no longer accepting")
        server = nil
    }
}
