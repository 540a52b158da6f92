import CBinderySockets
import Foundation
import Glibc

/// One epoll thread: accepts on its own SO_REUSEPORT listener, runs TLS and HTTP for its
/// connections, and takes back responses from handler tasks through an eventfd.
final class EventLoop: @unchecked Sendable {
    private let server: HTTPServer
    private let configuration: HTTPServerConfiguration
    private let epoll: Int32
    private let wakeFD: Int32
    private var listeners: [Int32] = []
    private var connections: [UInt64: Connection] = [:]
    private var nextToken: UInt64 = 16
    private var serializer: ResponseSerializer
    private var scratch = [UInt8](repeating: 0, count: 64 * 1024)
    private var nextDeadlineScan: UInt64 = 0
    private var isShuttingDown = false
    /// The listeners are out of epoll because accept4 failed (see `pauseAccepting`).
    private var isAcceptingPaused = false
    /// The last accept4 failure logged (errno, monotonic time), so a loop that keeps running
    /// out of descriptors logs each cause once every ten seconds, not at every retry.
    private var lastAcceptFailureLogged: (errno: Int32, at: UInt64)?
    private var shutdownDeadline: UInt64 = 0
    private let index: Int
    /// Returns from epoll_wait: a loop that spins shows here first (read by tests).
    let wakeups = Counter()

    // Shared with other threads; guarded by `lock`.
    private let lock = NSLock()
    private var completions: [(token: UInt64, delivery: Delivery)] = []

    /// What a handler or a stream producer hands to the loop.
    private enum Delivery {
        /// A handler's response.
        case response(HTTPResponse)
        /// A piece of a streamed body; the continuation hears when the producer may go on
        /// (false: the connection is gone, stop).
        case piece([UInt8], CheckedContinuation<Bool, Never>)
        /// The end of a streamed body; `failed`: the producer threw, cut the body short.
        case end(failed: Bool)
    }

    /// A streamed body's producer may go on once no more than this is waiting to be sent: room
    /// for it to make its next piece while the loop still sends, so neither waits on the other.
    static let streamLowWater = 512 * 1024
    private var shutdownRequested = false

    private static let wakeToken: UInt64 = 1
    private static let listenerTokenBase: UInt64 = 2  // listener i has token 2 + i (< 16)

    init(index: Int, server: HTTPServer, configuration: HTTPServerConfiguration, listeners: [Int32]) throws {
        self.index = index
        self.server = server
        self.configuration = configuration
        self.listeners = listeners
        serializer = ResponseSerializer(serverName: configuration.serverName)
        epoll = bindery_epoll_create()
        guard epoll >= 0 else { throw SocketError.last("epoll_create1", "event loop \(index)") }
        wakeFD = bindery_eventfd()
        guard wakeFD >= 0 else { throw SocketError.last("eventfd", "event loop \(index)") }
        guard bindery_epoll_ctl(epoll, EPOLL_CTL_ADD, wakeFD, BINDERY_EPOLLIN, Self.wakeToken) == 0 else {
            throw SocketError.last("epoll_ctl", "eventfd")
        }
        for (offset, fd) in listeners.enumerated() {
            guard bindery_epoll_ctl(epoll, EPOLL_CTL_ADD, fd, BINDERY_EPOLLIN, Self.listenerTokenBase + UInt64(offset)) == 0 else {
                throw SocketError.last("epoll_ctl", "listener")
            }
        }
    }

    deinit {
        Glibc.close(epoll)
        Glibc.close(wakeFD)
    }

    // MARK: - Cross-thread

    /// Hands a handler's response back to the loop (any thread).
    func post(_ response: HTTPResponse, to token: UInt64) {
        deliver(.response(response), to: token)
    }

    private func deliver(_ delivery: Delivery, to token: UInt64) {
        lock.withLock { completions.append((token, delivery)) }
        wake()
    }

    /// Asks the loop to stop accepting and drain (any thread).
    func requestShutdown() {
        lock.withLock { shutdownRequested = true }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    // MARK: - The loop

    func run() {
        var masks = [UInt32](repeating: 0, count: 256)
        var tokens = [UInt64](repeating: 0, count: 256)
        while true {
            let count = Int(bindery_epoll_wait(epoll, &masks, &tokens, 256, 250))
            wakeups.increment()
            if count < 0 && errno != EINTR { server.log("event loop \(index): epoll_wait failed: errno \(errno)") }
            for i in 0..<max(count, 0) {
                switch tokens[i] {
                case Self.wakeToken: drainWakeups()
                case Self.listenerTokenBase..<16: acceptAll(listener: listeners[Int(tokens[i] - Self.listenerTokenBase)])
                default:
                    if let connection = connections[tokens[i]] { service(connection, events: masks[i]) }
                }
            }
            if count > 0 { server.handler.loopWillWait(index) }
            let now = Self.now()
            if now >= nextDeadlineScan {
                nextDeadlineScan = now + 250_000_000
                expireDeadlines(now: now)
                resumeAccepting()
            }
            if isShuttingDown && (connections.isEmpty || now >= shutdownDeadline) {
                for connection in Array(connections.values) { close(connection) }
                return
            }
        }
    }

    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    private func drainWakeups() {
        var value: UInt64 = 0
        _ = Glibc.read(wakeFD, &value, 8)
        let (ready, stop) = lock.withLock { () -> ([(token: UInt64, delivery: Delivery)], Bool) in
            defer { completions.removeAll() }
            return (completions, shutdownRequested)
        }
        for (token, delivery) in ready {
            guard let connection = connections[token] else {
                if case let .piece(_, producer) = delivery { producer.resume(returning: false) }
                continue
            }
            switch delivery {
            case let .response(response): complete(connection, with: response)
            case let .piece(bytes, producer): send(bytes, on: connection, producer: producer)
            case let .end(failed): finishStream(on: connection, failed: failed)
            }
        }
        if stop && !isShuttingDown { beginShutdown() }
    }

    private func beginShutdown() {
        isShuttingDown = true
        shutdownDeadline = Self.now() + configuration.shutdownGracePeriod.nanoseconds
        for fd in listeners {
            _ = bindery_epoll_ctl(epoll, EPOLL_CTL_DEL, fd, 0, 0)
            Glibc.close(fd)
        }
        listeners.removeAll()
        for connection in Array(connections.values) {
            if connection.isDispatched || connection.pendingOutput > 0 || connection.head != nil {
                connection.closeAfterFlush = true  // finish the request in flight, then close
            } else {
                close(connection)
            }
        }
    }

    // MARK: - Accepting

    private func acceptAll(listener: Int32) {
        while true {
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bindery_accept(listener, $0, &length) }
            }
            if fd < 0 {
                let error = errno
                switch error {
                case EAGAIN, EWOULDBLOCK: return
                // This connection failed (accept(2) passes on its pending network error); the next may not.
                case EINTR, ECONNABORTED, EPROTO, EPERM, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH:
                    continue
                // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unforeseen: retrying at once would spin.
                default:
                    pauseAccepting(after: SocketError(call: "accept4", errno: error, subject: "listener \(listener)"))
                    return
                }
            }
            let admission = server.admit()
            if admission == .refuse {
                Glibc.close(fd)
                continue
            }
            do {
                let tls = try TLSConnection(context: server.currentTLSContext, fd: fd)
                let token = nextToken
                nextToken += 1
                let connection = Connection(token: token, fd: fd, remoteAddress: SocketAddressText.describe(address), tls: tls,
                                            isOverflow: admission == .overflow)
                connections[token] = connection
                connection.setDeadline(.handshake, after: configuration.handshakeTimeout, now: Self.now())
                setInterest(connection, BINDERY_EPOLLIN | BINDERY_EPOLLRDHUP)
                service(connection, events: BINDERY_EPOLLIN)
            } catch {
                server.log("TLS setup for a new connection failed: \(error)")
                server.release(admission)
                Glibc.close(fd)
            }
        }
    }

    /// Takes the listeners out of epoll: they stay readable while connections wait, so a loop
    /// that cannot accept them (no descriptor left) would wake at once, for ever. They come back
    /// when a connection of this loop closes and at every deadline scan (descriptors may also
    /// free elsewhere in the process).
    private func pauseAccepting(after error: SocketError) {
        if !isAcceptingPaused {
            isAcceptingPaused = true
            for fd in listeners { _ = bindery_epoll_ctl(epoll, EPOLL_CTL_DEL, fd, 0, 0) }
            server.acceptPauses.increment()
        }
        let now = Self.now()
        if let last = lastAcceptFailureLogged, last.errno == error.errno, now - last.at < 10_000_000_000 { return }
        lastAcceptFailureLogged = (error.errno, now)
        server.log("event loop \(index): \(error); not accepting until a descriptor frees")
    }

    private func resumeAccepting() {
        guard isAcceptingPaused else { return }
        isAcceptingPaused = false
        for (offset, fd) in listeners.enumerated()
        where bindery_epoll_ctl(epoll, EPOLL_CTL_ADD, fd, BINDERY_EPOLLIN, Self.listenerTokenBase + UInt64(offset)) != 0 {
            server.log("event loop \(index): \(SocketError.last("epoll_ctl", "listener \(fd)"))")
        }
    }

    // MARK: - Serving a connection

    private func service(_ connection: Connection, events: UInt32) {
        if events & (BINDERY_EPOLLERR | BINDERY_EPOLLHUP) != 0 {
            close(connection)  // reset, or shut down both ways: nothing can be sent any more
            return
        }
        if events & BINDERY_EPOLLRDHUP != 0 {
            connection.isInputClosed = true
            if connection.isDispatched {
                abandon(connection)
                return
            }
        }
        if connection.phase == .handshaking {
            switch connection.tls.handshake() {
            case .done:
                connection.phase = .open
                if let identity = connection.tls.peerIdentity() {
                    connection.peer = PeerInfo(identity: identity.identity, certificateFingerprint: identity.fingerprint,
                                               remoteAddress: connection.remoteAddress, identityKind: identity.kind)
                }
                if connection.isOverflow {
                    respondAndClose(connection, .problem(503, detail: "the server has too many connections; retry later"))
                    return
                }
                connection.setDeadline(.keepAlive, after: configuration.keepAliveTimeout, now: Self.now())
            case .wantRead:
                if connection.isInputClosed {
                    close(connection)  // the handshake needs bytes that will never come
                } else {
                    setInterest(connection, BINDERY_EPOLLIN | BINDERY_EPOLLRDHUP)
                }
                return
            case .wantWrite: setInterest(connection, BINDERY_EPOLLOUT | (connection.isInputClosed ? 0 : BINDERY_EPOLLRDHUP)); return
            case .closed: close(connection); return
            case let .failed(error):
                server.log("TLS handshake with \(connection.remoteAddress) failed: \(error)")
                close(connection)
                return
            }
        }
        guard flush(connection) else { return }
        if connection.phase == .closing { return }
        readAndProcess(connection)
    }

    /// Reads what is there (unless a request is in flight or output is backed up), then parses.
    ///
    /// A read that leaves OpenSSL holding nothing ends the reading: epoll is level-triggered and
    /// says so if the socket has more, which saves the read(2) that would only answer EAGAIN
    /// (not once the peer has shut down its side: EPOLLIN is no longer asked for then).
    /// What OpenSSL holds (records read ahead) epoll cannot see, so after parsing, reading goes
    /// on while it holds some and the connection may read: stopped at a limit (a request in
    /// flight, output backed up, input full), it goes on when that clears (`complete`, `flush`).
    private func readAndProcess(_ connection: Connection) {
        var sawEOF = false
        let inputLimit = configuration.limits.maxRequestLine + configuration.limits.maxHeaderBytes
            + configuration.limits.maxBodyBytes + 64 * 1024
        func mayRead() -> Bool {
            !connection.isDispatched && connection.pendingOutput < configuration.outputBufferLimit && connection.unreadCount < inputLimit
                && connection.phase == .open
        }
        var wouldBlock = false  // OpenSSL holds at most part of a record: wait for epoll
        connection.readWantsWrite = false
        repeat {
            reading: while mayRead() {
                let outcome = scratch.withUnsafeMutableBytes { connection.tls.read(into: $0) }
                switch outcome {
                case let .done(count):
                    connection.input.append(contentsOf: scratch[0..<count])
                    if connection.deadlineKind == .body { connection.setDeadline(.body, after: configuration.bodyIdleTimeout, now: Self.now()) }
                    // Once the peer has shut down its side, EPOLLIN is no longer asked for: read to the end.
                    if !connection.tls.hasBufferedInput && !connection.isInputClosed { break reading }
                case .wantRead: wouldBlock = true; break reading
                case .wantWrite: connection.readWantsWrite = true; wouldBlock = true; break reading
                case .closed: sawEOF = true; break reading
                case .failed: close(connection); return
                }
            }
            process(connection)
            guard connections[connection.token] != nil else { return }
        } while !wouldBlock && !sawEOF && mayRead() && connection.tls.hasBufferedInput
        if sawEOF { connection.isInputClosed = true }
        if connection.isInputClosed && connection.isDispatched {
            abandon(connection)
            return
        }
        if sawEOF && connection.pendingOutput == 0 {
            close(connection)
            return
        }
        updateInterest(connection)
    }

    /// A client that stops sending (FIN or reset) while a handler works on its request is taken
    /// to be gone, as nginx and Go's net/http do: its connection closes and `close` cancels the
    /// handler's task, so a long poll ends at once instead of holding its resources to the end.
    /// (Level-triggered EPOLLRDHUP would otherwise report the connection ready until it answers.)
    private func abandon(_ connection: Connection) { close(connection) }

    /// Parses and dispatches requests in order, one in flight at a time.
    private func process(_ connection: Connection) {
        let limits = configuration.limits
        // Output backed up (a client pipelining without reading): parse no further until it drains
        // (EPOLLOUT → `service` → `readAndProcess`), so answers given on the loop never pile up.
        while connection.phase == .open && !connection.isDispatched && connection.pendingOutput < configuration.outputBufferLimit
                && !(isShuttingDown && connection.closeAfterFlush && connection.head == nil && connection.unreadCount == 0) {
            if let head = connection.head {
                switch head.framing {
                case .none: dispatch(connection, head: head, body: [])
                case let .contentLength(length):
                    guard connection.unreadCount >= length else { return }
                    let body = Array(connection.input[connection.inputStart..<(connection.inputStart + length)])
                    connection.consume(length)
                    dispatch(connection, head: head, body: body)
                case .chunked:
                    var decoder = connection.chunked ?? ChunkedDecoder(limits: limits)
                    let progress = connection.input.withUnsafeBufferPointer {
                        decoder.decode(UnsafeBufferPointer(rebasing: $0[connection.inputStart...]))
                    }
                    connection.chunked = decoder
                    switch progress {
                    case let .needMore(consumed): connection.consume(consumed); return
                    case let .done(consumed):
                        connection.consume(consumed)
                        dispatch(connection, head: head, body: decoder.body)
                    case let .failure(error): respondAndClose(connection, .problem(error.status, detail: error.reason)); return
                    }
                }
                continue
            }
            guard connection.unreadCount > 0 else { return }
            let result = connection.input.withUnsafeBufferPointer {
                HTTPHeadParser.parse(UnsafeBufferPointer(rebasing: $0[connection.inputStart...]), limits: limits)
            }
            switch result {
            case .incomplete:
                if connection.deadlineKind != .header {
                    connection.setDeadline(.header, after: configuration.headerTimeout, now: Self.now())
                }
                return
            case let .failure(error):
                respondAndClose(connection, .problem(error.status, detail: error.reason))
                return
            case let .head(head, length):
                connection.consume(length)
                connection.head = head
                connection.chunked = nil
                if head.framing != .none {
                    connection.setDeadline(.body, after: configuration.bodyIdleTimeout, now: Self.now())
                    if head.expectsContinue && head.minorVersion == 1 {
                        connection.output.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8)
                        guard flush(connection) else { return }
                    }
                }
            }
        }
    }

    private func dispatch(_ connection: Connection, head: HTTPRequestHead, body: [UInt8]) {
        // Revocation applies to the next request: resumed sessions skip chain verification and
        // connections outlive CRL reloads, so each connection is checked once per TLS context.
        let current = server.currentTLSContext
        if connection.revocationCheckedGeneration != current.generation {
            if connection.tls.isPeerRevoked(by: current) {
                respondAndClose(connection, .problem(403, detail: "the client certificate has been revoked"))
                return
            }
            connection.revocationCheckedGeneration = current.generation
        }
        connection.head = nil
        connection.chunked = nil
        connection.isDispatched = true
        connection.setDeadline(.none, after: .zero, now: 0)
        guard let peer = connection.peer else {
            complete(connection, with: .problem(403, detail: "no client certificate identity"))
            return
        }
        let request = HTTPRequest(head: head, body: body, peer: peer, loop: index)
        let handler = server.handler
        if let response = handler.respondImmediately(to: request) {
            // `process` goes on with what is buffered; reading again here would nest a level
            // per request for a client that keeps up.
            complete(connection, with: response, for: head, readingOn: false)
            return
        }
        pendingHeads[connection.token] = head
        let token = connection.token
        server.inFlight.increment()
        handlerTasks[token] = Task {
            let response = await handler.respond(to: request)
            self.post(response, to: token)
            self.server.inFlight.decrement()
        }
    }

    /// Heads of requests whose handler runs as a task, for HEAD and keep-alive decisions.
    private var pendingHeads: [UInt64: HTTPRequestHead] = [:]
    /// Handler tasks at work, by connection token: cancelled if their connection closes first.
    private var handlerTasks: [UInt64: Task<Void, Never>] = [:]

    private func complete(_ connection: Connection, with response: HTTPResponse, for knownHead: HTTPRequestHead? = nil,
                          readingOn: Bool = true) {
        let head = knownHead ?? pendingHeads.removeValue(forKey: connection.token)
        handlerTasks[connection.token] = nil
        connection.isDispatched = false
        let keepAlive = (head?.keepAlive ?? false) && !response.closesConnection && !connection.closeAfterFlush && !isShuttingDown
        if let stream = response.stream, head?.method != "HEAD", response.status >= 200, response.status != 204, response.status != 304 {
            startStream(stream, of: response, on: connection, chunked: head?.minorVersion != 0, keepAlive: keepAlive && head?.minorVersion != 0)
            return
        }
        serializer.append(response, to: &connection.output, includeBody: head?.method != "HEAD", close: !keepAlive,
                          keepAlive10: keepAlive && head?.minorVersion == 0)
        if !keepAlive {
            connection.closeAfterFlush = true
            connection.phase = .closing
        }
        guard flush(connection) else { return }
        if connection.phase == .closing { return }
        connection.setDeadline(.keepAlive, after: configuration.keepAliveTimeout, now: Self.now())
        if readingOn { readAndProcess(connection) }  // pipelined requests, and plaintext OpenSSL already holds
    }

    // MARK: - Streamed bodies

    /// Sends the head, then runs the producer as a task that hands each piece to the loop and
    /// waits until the loop has room for more. The connection reads no further request meanwhile.
    private func startStream(_ stream: HTTPBodyStream, of response: HTTPResponse, on connection: Connection, chunked: Bool, keepAlive: Bool) {
        connection.isDispatched = true
        connection.streaming = Connection.Streaming(chunked: chunked, keepAlive: keepAlive)
        connection.setDeadline(.none, after: .zero, now: 0)
        serializer.appendStreamingHead(response, to: &connection.output, chunked: chunked, close: !keepAlive)
        let token = connection.token
        server.inFlight.increment()
        handlerTasks[token] = Task {
            defer { self.server.inFlight.decrement() }
            do {
                while let piece = try await stream.next() {
                    guard !piece.isEmpty else { continue }
                    let goOn = await withCheckedContinuation { producer in self.deliver(.piece(piece, producer), to: token) }
                    guard goOn else { return }
                }
                self.deliver(.end(failed: false), to: token)
            } catch {
                self.deliver(.end(failed: true), to: token)
            }
        }
        guard flush(connection) else { return }
        updateInterest(connection)
    }

    /// Queues a piece and lets the producer go on at once if little is waiting, else when
    /// `flush` has drained the output (EPOLLOUT).
    private func send(_ piece: [UInt8], on connection: Connection, producer: CheckedContinuation<Bool, Never>) {
        guard let streaming = connection.streaming else {
            producer.resume(returning: false)
            return
        }
        ResponseSerializer.appendPiece(piece, to: &connection.output, chunked: streaming.chunked)
        connection.streaming?.waiter = producer
        guard flush(connection) else { return }
        resumeProducerIfDrained(connection)
    }

    private func resumeProducerIfDrained(_ connection: Connection) {
        guard connection.pendingOutput <= Self.streamLowWater, let producer = connection.streaming?.waiter else { return }
        connection.streaming?.waiter = nil
        producer.resume(returning: true)
    }

    /// The producer is done: the last chunk, then the next request (keep-alive) or close. A
    /// producer that failed gets its body cut: the connection closes without the last chunk.
    private func finishStream(on connection: Connection, failed: Bool) {
        guard let streaming = connection.streaming else { return }
        handlerTasks[connection.token] = nil
        if failed {
            close(connection)
            return
        }
        if streaming.chunked { connection.output.append(contentsOf: ResponseSerializer.lastChunk) }
        connection.streaming = nil
        connection.isDispatched = false
        if !streaming.keepAlive {
            connection.closeAfterFlush = true
            connection.phase = .closing
        }
        guard flush(connection) else { return }
        if connection.phase == .closing { return }
        connection.setDeadline(.keepAlive, after: configuration.keepAliveTimeout, now: Self.now())
        readAndProcess(connection)
    }

    private func respondAndClose(_ connection: Connection, _ response: HTTPResponse) {
        connection.head = nil
        connection.isDispatched = false
        connection.phase = .closing
        connection.closeAfterFlush = true
        serializer.append(response, to: &connection.output, includeBody: true, close: true, keepAlive10: false)
        _ = flush(connection)
    }

    /// Writes pending output. False when the connection is gone or must wait for EPOLLOUT.
    private func flush(_ connection: Connection) -> Bool {
        var wrote = false
        let corked = connection.pendingOutput > Self.tlsRecordSize && Self.cork(connection.fd, true)
        defer { if corked && connection.phase != .closing { _ = Self.cork(connection.fd, false) } }
        while connection.pendingOutput > 0 {
            let outcome = connection.output.withUnsafeBytes { bytes in
                connection.tls.write(UnsafeRawBufferPointer(rebasing: bytes[connection.outputStart...]))
            }
            switch outcome {
            case let .done(count):
                connection.outputStart += count
                wrote = true
            case .wantWrite, .wantRead:
                // A stream may take long at a slow reader: the write deadline is for no progress at all.
                if connection.deadlineKind != .write || (wrote && connection.streaming != nil) {
                    connection.setDeadline(.write, after: configuration.writeTimeout, now: Self.now())
                }
                if connection.streaming != nil { compactOutput(connection) }
                resumeProducerIfDrained(connection)
                updateInterest(connection)
                return false
            case .closed, .failed:
                close(connection)
                return false
            }
        }
        connection.output.removeAll(keepingCapacity: connection.output.capacity <= 256 * 1024)
        connection.outputStart = 0
        if connection.deadlineKind == .write {
            if connection.streaming != nil {
                connection.setDeadline(.none, after: .zero, now: 0)  // waiting on the producer, not the client
            } else {
                connection.setDeadline(.keepAlive, after: configuration.keepAliveTimeout, now: Self.now())
            }
        }
        resumeProducerIfDrained(connection)
        if connection.closeAfterFlush && !connection.isDispatched && connection.head == nil {
            connection.tls.shutdown()
            close(connection)
            return false
        }
        return true
    }

    /// The most plaintext one TLS record carries: output longer than this goes out as several
    /// records, one `write` each.
    private static let tlsRecordSize = 16 * 1024

    /// Sets or clears `TCP_CORK` on `fd`: while set, the kernel sends only full segments, so
    /// the records of one long response leave as one segment instead of one each (on loopback,
    /// each segment also costs this side the receiver's processing). True when it took.
    private static func cork(_ fd: Int32, _ on: Bool) -> Bool {
        var value: Int32 = on ? 1 : 0
        return setsockopt(fd, Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    /// Drops the bytes already sent from the front of a stream's output, so it does not grow.
    private func compactOutput(_ connection: Connection) {
        guard connection.outputStart > 64 * 1024 else { return }
        connection.output.removeFirst(connection.outputStart)
        connection.outputStart = 0
    }

    private func updateInterest(_ connection: Connection) {
        var mask = connection.isInputClosed ? 0 : BINDERY_EPOLLRDHUP
        if connection.pendingOutput > 0 || connection.readWantsWrite
            || connection.phase == .handshaking && connection.interest & BINDERY_EPOLLOUT != 0 {
            mask |= BINDERY_EPOLLOUT
        }
        let isReading = !connection.isDispatched && connection.pendingOutput < configuration.outputBufferLimit
        if isReading && connection.phase != .closing && !connection.isInputClosed {
            mask |= BINDERY_EPOLLIN
        }
        setInterest(connection, mask)
    }

    private func setInterest(_ connection: Connection, _ mask: UInt32) {
        if connection.isRegistered && connection.interest == mask { return }
        let op = connection.isRegistered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD
        if bindery_epoll_ctl(epoll, op, connection.fd, mask, connection.token) == 0 {
            connection.interest = mask
            connection.isRegistered = true
        } else {
            server.log("epoll_ctl on \(connection.remoteAddress) failed: errno \(errno)")
            close(connection)
        }
    }

    private func close(_ connection: Connection) {
        guard connections.removeValue(forKey: connection.token) != nil else { return }
        connection.phase = .closing  // a `process` still on the stack parses no further
        pendingHeads[connection.token] = nil
        handlerTasks.removeValue(forKey: connection.token)?.cancel()
        if let producer = connection.streaming?.waiter {
            connection.streaming?.waiter = nil
            producer.resume(returning: false)
        }
        _ = bindery_epoll_ctl(epoll, EPOLL_CTL_DEL, connection.fd, 0, 0)
        Glibc.close(connection.fd)
        server.release(connection.isOverflow ? .overflow : .accept)
        resumeAccepting()  // a descriptor is free
    }

    // MARK: - Deadlines

    private func expireDeadlines(now: UInt64) {
        for connection in Array(connections.values) where connection.deadline != 0 && now >= connection.deadline {
            switch connection.deadlineKind {
            case .header, .body:
                respondAndClose(connection, .problem(408, detail: connection.deadlineKind == .header
                    ? "the header section did not arrive in time" : "the body stalled"))
            case .handshake, .keepAlive, .write, .none:
                close(connection)
            }
        }
    }

    /// Open connections on this loop (for tests and metrics).
    var connectionCount: Int { connections.count }
}
