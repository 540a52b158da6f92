/// One client connection's state, owned by one event loop (never touched from elsewhere).
final class Connection {
    /// Where the connection is in its life.
    enum Phase {
        /// TLS handshake in progress.
        case handshaking
        /// Reading (or between) requests.
        case open
        /// A response is being flushed, then the connection closes.
        case closing
    }

    /// Why the current deadline exists; what happens when it passes.
    enum Deadline {
        case none, handshake, header, body, keepAlive, write
    }

    let token: UInt64
    let fd: Int32
    let remoteAddress: String
    let tls: TLSConnection
    /// Over the connection cap: answer 503 after the handshake and close.
    let isOverflow: Bool
    var phase = Phase.handshaking
    var peer: PeerInfo?

    // Input: bytes read and not yet consumed, from `inputStart`.
    var input: [UInt8] = []
    var inputStart = 0
    var unreadCount: Int { input.count - inputStart }

    // Output: bytes to send, from `outputStart`.
    var output: [UInt8] = []
    var outputStart = 0
    var pendingOutput: Int { output.count - outputStart }

    /// A head whose body is still arriving.
    var head: HTTPRequestHead?
    var chunked: ChunkedDecoder?
    /// A handler is working on a request: nothing more is parsed until it answers (pipelining order).
    var isDispatched = false
    /// A streamed response going out (`HTTPBodyStream`); nil otherwise.
    var streaming: Streaming?
    /// The TLS context generation whose CRLs the peer was last checked against (0: never).
    var revocationCheckedGeneration = 0
    /// Close once the output is flushed.
    var closeAfterFlush = false
    /// The peer sends nothing more (EPOLLRDHUP, or a read reached the end of the stream):
    /// neither EPOLLIN nor EPOLLRDHUP is watched again, as both would stay ready for ever.
    var isInputClosed = false
    /// The last read stopped because OpenSSL must write first (a reply to a KeyUpdate with the
    /// send buffer full): EPOLLOUT, not EPOLLIN, says when to read again.
    var readWantsWrite = false
    var deadline: UInt64 = 0
    var deadlineKind = Deadline.none
    /// The epoll mask registered now.
    var interest: UInt32 = 0
    /// The socket is in the loop's epoll set (its mask may be 0: errors and hangups only).
    var isRegistered = false

    /// How a streamed response is framed and ends, and its producer if it waits for room.
    struct Streaming {
        /// Chunked framing (HTTP/1.1); else the body ends with the connection (HTTP/1.0).
        var chunked: Bool
        /// The connection serves more requests after the last chunk.
        var keepAlive: Bool
        /// The producer, waiting until the output drains below the low-water mark.
        var waiter: CheckedContinuation<Bool, Never>?
    }

    init(token: UInt64, fd: Int32, remoteAddress: String, tls: TLSConnection, isOverflow: Bool) {
        self.token = token
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.tls = tls
        self.isOverflow = isOverflow
    }

    func consume(_ count: Int) {
        inputStart += count
        if inputStart == input.count {
            input.removeAll(keepingCapacity: input.capacity <= 64 * 1024)
            inputStart = 0
        } else if inputStart > 32 * 1024 && inputStart > input.count / 2 {
            input.removeFirst(inputStart)
            inputStart = 0
        }
    }

    func setDeadline(_ kind: Deadline, after duration: Duration, now: UInt64) {
        deadlineKind = kind
        deadline = kind == .none ? 0 : now + duration.nanoseconds
    }
}

extension Duration {
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds)) / 1_000_000_000
    }
}
