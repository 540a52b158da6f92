import CBinderySockets
import Dispatch
import Foundation
import Glibc

/// An HTTPS/1.1 server on POSIX sockets: one epoll thread per core, TLS 1.2+ with required
/// client certificates, strict parsing with hard limits, graceful shutdown, and certificate
/// reload without dropping connections.
public final class HTTPServer: @unchecked Sendable {
    /// The configuration it started with.
    public let configuration: HTTPServerConfiguration
    let handler: any HTTPHandler
    private let logger: @Sendable (String) -> Void
    private var loops: [EventLoop] = []
    private var threads: [Thread] = []
    private let finished = DispatchGroup()
    /// The bound addresses (with the real port when 0 was asked).
    public private(set) var boundAddresses: [ListenAddress] = []
    /// The connection cap in force: `configuration.maxConnections`, lowered at start when
    /// RLIMIT_NOFILE cannot hold that many descriptors.
    public private(set) var effectiveMaxConnections: Int

    private let lock = NSLock()
    private var tlsContext: TLSContext
    private var openConnections = 0
    private var overflowConnections = 0
    private var rotationTimer: (any DispatchSourceTimer)?
    let inFlight = Counter()
    /// Times a loop stopped accepting because descriptors ran out (EMFILE, ENFILE).
    let acceptPauses = Counter()

    /// A server answering with `handler`; `logger` receives one line per notable event.
    public init(configuration: HTTPServerConfiguration, handler: any HTTPHandler, logger: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
        effectiveMaxConnections = configuration.maxConnections
        tlsContext = try TLSContext(configuration.tls)
    }

    func log(_ line: String) { logger(line) }

    var currentTLSContext: TLSContext { lock.withLock { tlsContext } }

    /// Raises RLIMIT_NOFILE, binds every address and starts the event loops.
    public func start() throws {
        // OpenSSL writes with write(2): a peer that hung up must cost an EPIPE, not the process.
        signal(SIGPIPE, SIG_IGN)
        capConnectionsToDescriptors()
        let addresses = try configuration.listen.map(ListenAddress.init)
        var perLoop = [[Int32]](repeating: [], count: configuration.eventLoops)
        for address in addresses {
            var port: UInt16?
            for loop in 0..<configuration.eventLoops {
                let (fd, bound) = try address.makeListener(port: port)
                port = bound
                perLoop[loop].append(fd)
            }
            var resolved = address
            resolved.port = port ?? address.port
            boundAddresses.append(resolved)
        }
        for index in 0..<configuration.eventLoops {
            loops.append(try EventLoop(index: index, server: self, configuration: configuration, listeners: perLoop[index]))
        }
        for loop in loops {
            finished.enter()
            let thread = Thread { [finished] in
                loop.run()
                finished.leave()
            }
            thread.name = "bindery-http"
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
        }
        let timer = DispatchSource.makeTimerSource()
        let interval = configuration.ticketKeyRotation
        timer.schedule(deadline: .now() + .nanoseconds(Int(interval.nanoseconds)), repeating: .nanoseconds(Int(interval.nanoseconds)))
        timer.setEventHandler { TLSContext.rotateTicketKeys() }
        timer.resume()
        rotationTimer = timer
        log("listening on \(boundAddresses.map(\.description).joined(separator: ", ")) with \(loops.count) event loops")
    }

    /// Raises the soft descriptor limit to the hard one, and lowers the connection cap to what
    /// then fits: past it accept4 would fail with EMFILE, and so would the store's own files.
    private func capConnectionsToDescriptors() {
        let (descriptors, failure) = DescriptorLimit.raiseToHardLimit()
        if let failure { log("\(failure); the connection cap follows the current limit") }
        effectiveMaxConnections = DescriptorLimit.connectionCap(configured: configuration.maxConnections, descriptorLimit: descriptors)
        if effectiveMaxConnections < configuration.maxConnections {
            log("maxConnections lowered from \(configuration.maxConnections) to \(effectiveMaxConnections): RLIMIT_NOFILE allows "
                + "\(descriptors) descriptors, \(DescriptorLimit.reserve) kept for the rest of the process and "
                + "\(Self.overflowSlots) for 503 answers past the cap")
        }
    }

    /// Re-reads the certificate, key, CA bundle and CRL. New connections use them;
    /// established ones keep theirs. A bad file keeps the old ones and throws why.
    public func reloadTLS() throws {
        let fresh = try TLSContext(configuration.tls)
        lock.withLock { tlsContext = fresh }
        log("TLS certificates reloaded")
    }

    /// Stops accepting, lets requests in flight finish (up to the grace period), closes idle
    /// connections, then returns once every loop has stopped.
    public func shutdown() {
        rotationTimer?.cancel()
        for loop in loops { loop.requestShutdown() }
        finished.wait()
        log("stopped")
    }

    /// Waits until the server has stopped.
    public func wait() { finished.wait() }

    /// `shutdownOn` signals (SIGTERM, SIGINT) shut down gracefully; SIGHUP reloads the TLS files.
    /// The handlers are armed before this returns (a sigaction writing to a pipe, read by a
    /// thread): a signal that arrives a moment after start is never lost.
    public func installSignalHandlers(shutdownOn: [Int32] = [SIGTERM, SIGINT]) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            log("pipe2 for signal handling failed: errno \(errno); signals keep their default actions")
            return
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        for signalNumber in shutdownOn + [SIGHUP] where bindery_signal_to_fd(signalNumber, fds[1]) != 0 {
            log("sigaction(\(signalNumber)) failed: errno \(errno)")
        }
        let reader = fds[0], shutdownSignals = Set(shutdownOn)
        let thread = Thread { [weak self] in
            var byte: UInt8 = 0
            while Glibc.read(reader, &byte, 1) == 1 {
                guard let self else { return }
                let signalNumber = Int32(byte)
                if signalNumber == SIGHUP {
                    do { try self.reloadTLS() } catch { self.log("TLS reload failed, keeping the old certificates: \(error)") }
                } else if shutdownSignals.contains(signalNumber) {
                    self.log("signal \(signalNumber): shutting down")
                    DispatchQueue.global().async { self.shutdown() }
                }
            }
        }
        thread.name = "bindery-signals"
        thread.start()
    }

    /// Connections open now, across loops.
    public var connectionCount: Int { lock.withLock { openConnections + overflowConnections } }

    /// Returns from epoll_wait across the loops since start (tests prove with it that no loop spins).
    var loopWakeups: Int { loops.reduce(0) { $0 + $1.wakeups.current } }

    // MARK: - Admission

    enum Admission { case accept, overflow, refuse }

    /// Connections past the cap that still get a canned 503 (beyond them, a close).
    static let overflowSlots = 64

    /// Counts a new connection against the cap.
    func admit() -> Admission {
        lock.withLock {
            if openConnections < effectiveMaxConnections {
                openConnections += 1
                return .accept
            }
            if overflowConnections < Self.overflowSlots {
                overflowConnections += 1
                return .overflow
            }
            return .refuse
        }
    }

    func release(_ admission: Admission) {
        lock.withLock {
            switch admission {
            case .accept: openConnections -= 1
            case .overflow: overflowConnections -= 1
            case .refuse: break
            }
        }
    }
}

/// A thread-safe counter.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() { lock.withLock { value += 1 } }
    func decrement() { lock.withLock { value -= 1 } }
    var current: Int { lock.withLock { value } }
}
