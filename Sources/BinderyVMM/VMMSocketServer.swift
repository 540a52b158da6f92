import BinderyReconciler
import BinderyStore
import Foundation
import Glibc

/// The local socket where the process that runs a VM (its VMM) receives the VM's descriptors.
/// A connection sends an `AttachRequest`; the socket checks the peer's credentials and spends
/// the one-time token, then answers with a `HandOffManifest` and the descriptors as
/// SCM_RIGHTS (or an `AttachRefusal`). The VMM holds the VM while its connection stays open:
/// closing it is the detach. Every attach, refusal and detach is audited with the peer's pid
/// and uid. Stopping the server leaves holders recorded: their VMMs still run.
public final class VMMSocketServer: @unchecked Sendable {
    /// Where and how the socket listens.
    public struct Configuration: Sendable {
        /// The socket's path.
        public var path: String
        /// Its mode (0600: only the daemon's user).
        public var mode: mode_t = 0o600
        /// A group that may connect (then give `mode` 0660).
        public var group: gid_t?
        /// Connections at once; more are refused at accept.
        public var maxConnections = 64
        /// How long a new connection may take to send its request.
        public var requestTimeoutSeconds = 5

        /// A configuration for `path`.
        public init(path: String) { self.path = path }
    }

    /// Largest request accepted.
    static let requestLimit = 1024
    /// Largest manifest sent.
    static let manifestLimit = 64 * 1024

    private let configuration: Configuration
    private let store: Store
    private let reconciler: Reconciler
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var listener: UnixSeqpacket?
    private var connections: [Int32: UnixSeqpacket] = [:]
    private var stopping = false

    /// A server for `reconciler`'s VMs.
    public init(configuration: Configuration, store: Store, reconciler: Reconciler, log: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.store = store
        self.reconciler = reconciler
        self.log = log
    }

    /// The socket's path.
    public var path: String { configuration.path }

    /// Forgets holders whose process is gone, binds the socket and starts accepting.
    public func start() async throws {
        let pruned = try await store.write { db -> Int in
            var count = 0
            for (vmID, holder) in try AttachmentRepository.holders(in: db) where !holder.isRunning {
                try AttachmentRepository.release(vmID: vmID, pid: holder.pid, reason: "process \(holder.pid) is gone", in: db)
                count += 1
            }
            return count
        }
        if pruned > 0 { log("vmm socket: forgot \(pruned) VMM holder(s) whose process is gone") }
        let socket = try UnixSeqpacket.listen(at: configuration.path, mode: configuration.mode, group: configuration.group)
        lock.withLock { listener = socket }
        let thread = Thread { [self] in acceptLoop(socket) }
        thread.name = "vmm-socket"
        thread.start()
        log("vmm socket: \(configuration.path) (mode \(String(configuration.mode, radix: 8)))")
    }

    /// Stops accepting and drops connections without recording detaches: the VMMs keep
    /// their descriptors and their VMs keep running.
    public func stop() {
        let (socket, open) = lock.withLock { () -> (UnixSeqpacket?, [UnixSeqpacket]) in
            stopping = true
            defer { listener = nil }
            return (listener, Array(connections.values))
        }
        socket?.shutdown()
        socket?.close()
        open.forEach { $0.shutdown() }
        unlink(configuration.path)
    }

    private func acceptLoop(_ socket: UnixSeqpacket) {
        while true {
            let connection: UnixSeqpacket
            do {
                connection = try socket.accept()
            } catch {
                if lock.withLock({ stopping }) { return }
                log("vmm socket: \(error)")
                if error.errno == EMFILE || error.errno == ENFILE { usleep(100_000) }
                continue
            }
            let admitted = lock.withLock { () -> Bool in
                guard !stopping, connections.count < configuration.maxConnections else { return false }
                connections[connection.fd] = connection
                return true
            }
            guard admitted else {
                try? connection.send(Array(try! JSONEncoder().encode(AttachRefusal(error: "too many VMM connections"))))
                connection.close()
                continue
            }
            let thread = Thread { [self] in
                serve(connection)
                lock.withLock { connections[connection.fd] = nil }
                connection.close()
            }
            thread.name = "vmm-connection"
            thread.start()
        }
    }

    /// One connection: request, check, hand-off, then hold until the peer closes.
    private func serve(_ connection: UnixSeqpacket) {
        let peer: (pid: Int32, uid: UInt32, gid: UInt32)
        do {
            peer = try connection.peerCredentials()
        } catch {
            refuse(connection, "no peer credentials: \(error)", audit: nil)
            return
        }
        guard peer.pid > 0 else {
            refuse(connection, "the peer's credentials carry no process id", audit: (nil, peer.pid, peer.uid, .unknown))
            return
        }
        connection.setReceiveTimeout(seconds: configuration.requestTimeoutSeconds)
        guard let message = try? connection.receive(capacity: Self.requestLimit),
              let request = try? JSONDecoder().decode(AttachRequest.self, from: Data(message.bytes)) else {
            refuse(connection, "expected one message {\"vm\": ID, \"token\": TOKEN} of at most \(Self.requestLimit) bytes within \(configuration.requestTimeoutSeconds) s",
                   audit: (nil, peer.pid, peer.uid, .unknown))
            return
        }
        let vmID = request.vm
        guard vmID.utf8.count <= 64, request.token.utf8.count == 64 else {
            refuse(connection, AttachmentRepository.Refusal.unknown.description, audit: (String(vmID.prefix(64)), peer.pid, peer.uid, .unknown))
            return
        }
        // The descriptors first (cheap duplicates): a token is spent only when there is something to give.
        let handOff: HandOff
        do {
            handOff = try reconciler.makeHandOff(for: vmID)
        } catch {
            let refusal: AttachmentRepository.Refusal?
            do {
                refusal = try blocking { [store] in
                    try await store.read { db in try AttachmentRepository.check(token: request.token, vmID: vmID, in: db) }
                }
            } catch {
                refusal = .unknown
            }
            if let refusal {
                refuse(connection, refusal.description, audit: (vmID, peer.pid, peer.uid, refusal))
            } else {
                refuse(connection, "\(vmID) cannot be handed over now: \(error)", audit: nil)
            }
            return
        }
        defer { reconciler.closeHandOff(handOff) }
        let outcome: Result<AttachmentRepository.Holder, AttachmentRepository.Refusal>
        do {
            outcome = try blocking { [store] in
                try await store.write { db in
                    try AttachmentRepository.redeem(token: request.token, vmID: vmID, pid: peer.pid, uid: peer.uid, gid: peer.gid,
                                                    isAlive: AttachmentRepository.Holder.isRunning(pid:), in: db)
                }
            }
        } catch {
            refuse(connection, "the store could not record the attach: \(error)", audit: nil)
            return
        }
        switch outcome {
        case let .failure(refusal):
            refuse(connection, refusal.description, audit: (vmID, peer.pid, peer.uid, refusal))
            return
        case .success:
            break
        }
        let manifest = Self.manifest(vmID: vmID, handOff)
        do {
            let bytes = Array(try JSONEncoder().encode(manifest))
            guard bytes.count <= Self.manifestLimit else {
                throw UnixSeqpacket.Failure(call: "manifest of \(bytes.count) bytes", errno: EMSGSIZE)
            }
            try connection.send(bytes, descriptors: handOff.descriptors.map(\.fd))
        } catch {
            log("vmm socket: sending \(vmID)'s descriptors to pid \(peer.pid) failed: \(error)")
            release(vmID, pid: peer.pid, reason: "sending the descriptors failed: \(error)")
            return
        }
        log("vmm socket: pid \(peer.pid) (uid \(peer.uid)) holds \(vmID): \(handOff.descriptors.map(\.name).joined(separator: ", "))")
        // Held until the peer closes its end (or dies). A stopping server leaves it recorded.
        connection.setReceiveTimeout(seconds: 0)
        while let message = try? connection.receive(capacity: 256), !message.bytes.isEmpty || !message.descriptors.isEmpty {
            message.descriptors.forEach { _ = Glibc.close($0) }
        }
        if lock.withLock({ stopping }) { return }
        release(vmID, pid: peer.pid, reason: "its connection closed")
        log("vmm socket: pid \(peer.pid) let go of \(vmID)")
    }

    private func release(_ vmID: String, pid: Int32, reason: String) {
        _ = try? blocking { [store] in
            try await store.write { db in try AttachmentRepository.release(vmID: vmID, pid: pid, reason: reason, in: db) }
        }
    }

    private func refuse(_ connection: UnixSeqpacket, _ reason: String,
                        audit: (vmID: String?, pid: Int32, uid: UInt32, refusal: AttachmentRepository.Refusal)?) {
        if let audit {
            _ = try? blocking { [store] in
                try await store.write { db in
                    try AttachmentRepository.recordRefusal(audit.refusal, vmID: audit.vmID, pid: audit.pid, uid: audit.uid, in: db)
                }
            }
        }
        log("vmm socket: refused: \(reason)")
        try? connection.send(Array((try? JSONEncoder().encode(AttachRefusal(error: reason))) ?? Data()))
    }

    static func manifest(vmID: String, _ handOff: HandOff) -> HandOffManifest {
        HandOffManifest(
            vm: vmID, path: handOff.path.rawValue,
            descriptors: handOff.descriptors.map {
                .init(name: $0.name, kind: $0.kind.rawValue, device: $0.device, group: $0.group, regions: $0.regions,
                      interrupts: $0.interrupts, iommufdDeviceId: $0.iommufdDeviceID, memoryRegion: $0.memoryRegion)
            },
            iommufd: handOff.ioas.flatMap { ioas in handOff.hwpt.map { .init(ioas: ioas, hwpt: $0) } },
            memory: handOff.memory.map { region in
                .init(guestAddress: "0x" + String(region.guestAddress, radix: 16), size: region.size,
                      backing: region.backingPath.map { .init(path: $0, offset: region.backingOffset) })
            })
    }
}

/// Runs `body` from a plain thread and waits for it (the socket's threads block on I/O
/// instead of holding the cooperative pool).
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = BlockingResult<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// Where `blocking` leaves the result for the waiting thread (written before the semaphore
/// is signalled, read after it is waited for).
final class BlockingResult<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
