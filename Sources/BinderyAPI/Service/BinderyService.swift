import BinderyHTTP
import BinderyNotify
import BinderyReconciler
import BinderyStore
import BinderyVMM
import Foundation
import Glibc
import OpenAPIRuntime

/// The daemon: store, kernel, reconciler and the HTTPS API, wired together.
package final class BinderyService: @unchecked Sendable {
    /// Which kernel to drive.
    package typealias KernelChoice = HostKernel.Choice

    /// Everything `bindery serve` can be told.
    package struct Configuration: Sendable {
        /// Database and development PKI.
        package var dataDirectory = "./bindery-data"
        /// Listen addresses.
        package var listen = ["127.0.0.1:8443"]
        /// Kernel.
        package var kernel = KernelChoice.auto
        /// Sysfs root for the Linux kernel.
        package var sysfsRoot = "/sys"
        /// Fault plan for the simulated kernel.
        package var faults = ""
        /// Which kind of host the simulated kernel pretends to be (`HostKernel.simulatedHostNames`).
        package var simulatedHost = "type1-nesting"
        /// Server certificate, key and client CA; nil: the development PKI.
        package var tls: TLSConfiguration?
        /// Role grants from the config file (win over the roles file).
        package var roles = RoleMap()
        /// A JSON file of grants reloaded when it changes (nil: `<data-dir>/pki/roles.json` with the
        /// development PKI, none with configured TLS, which never reads or creates `pki/`).
        package var rolesFile: String?
        /// Directories guest memory backing files may live beneath (nil: `<data-dir>/memory`).
        package var memoryDirectories: [String]?
        /// The device policy's allow list (empty: every device not of a host class and not in use).
        package var allowedDevices: [String] = []
        /// Event loops (nil: one per core).
        package var eventLoops: Int?
        /// The VMM socket (nil: `<data-dir>/vmm.sock`).
        package var vmmSocket: String?
        /// A group that may use the VMM socket (mode 0660 then; nil: 0600, the daemon's user only).
        package var vmmSocketGroup: String?

        /// The defaults.
        package init() {}
    }

    let configuration: Configuration
    let log: @Sendable (String) -> Void
    private var server: HTTPServer?
    private var reconciler: Reconciler?
    private var vmmSocket: VMMSocketServer?
    private var watchdog: Task<Void, Never>?
    private var checkpointer: AuditCheckpointer?
    /// The kernel driver chosen (`linux` or `simulated`).
    package private(set) var kernelDriver = ""
    /// The addresses bound.
    package var boundAddresses: [String] { server?.boundAddresses.map(\.description) ?? [] }

    /// A service for `configuration`; `log` gets one line per event.
    package init(configuration: Configuration, log: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.log = log
    }

    /// The simulated host profiles `--simulated-host` takes.
    package static let simulatedHostNames = HostKernel.simulatedHostNames

    /// Opens everything and starts serving. Returns once the listeners are up.
    package func start() async throws {
        let kernel: HostKernel
        do {
            kernel = try HostKernel.open(configuration.kernel, sysfsRoot: configuration.sysfsRoot,
                                         simulatedHost: configuration.simulatedHost, faults: configuration.faults,
                                         dataDirectory: configuration.dataDirectory)
        } catch let error as HostKernelError {
            throw ConfigurationError(reason: error.reason)
        }
        kernelDriver = kernel.driverName
        log("kernel driver: \(kernel.driverName) (release \(kernel.release); \(kernel.why))")

        let store = try Store(dataDirectory: configuration.dataDirectory, renderer: APIRepresentations())
        let reclaimed = try await store.write { db in try IdempotencyRepository.reclaimAbandoned(in: db) }
        if reclaimed > 0 { log("reclaimed \(reclaimed) Idempotency-Key(s) left in flight by the previous process") }
        let memoryPolicy = try makeMemoryPolicy()
        log("guest memory may come from: \(memoryPolicy.directories.joined(separator: ", "))")
        let capabilities = kernel.capabilities
        log("binding path: " + (capabilities.nesting.mechanism.map { "\($0.rawValue)" }
            ?? "none (\(capabilities.nesting.reason ?? "no nesting"))"))
        var options = ReconcilerOptions()
        options.memoryPolicy = memoryPolicy
        do {
            options.devicePolicy = try DevicePolicy(parsing: configuration.allowedDevices)
        } catch {
            throw ConfigurationError(reason: error.description)
        }
        log(configuration.allowedDevices.isEmpty
            ? "device policy: every device except storage, display and bridge classes and devices the host uses"
            : "device policy: only \(configuration.allowedDevices.joined(separator: ", ")), never devices the host uses")
        configureDescriptorStore(&options, kernel: kernel)
        let reconciler = Reconciler(store: store, kernel: kernel, options: options, dataDirectory: configuration.dataDirectory, logger: log)
        try await reconciler.start()
        self.reconciler = reconciler

        let pki = DevelopmentPKI(dataDirectory: configuration.dataDirectory)
        let tls: TLSConfiguration
        let rolesFile: String?
        if let configured = configuration.tls {
            tls = configured
            rolesFile = configuration.rolesFile
        } else {
            rolesFile = configuration.rolesFile ?? pki.roleMapPath
            if try pki.ensure() { log("created a development PKI in \(pki.directory) (CA, server and admin certificates)") }
            tls = TLSConfiguration(certificatePath: pki.directory + "/server.pem", privateKeyPath: pki.directory + "/server-key.pem",
                                   clientCABundlePath: pki.directory + "/ca.pem")
        }
        let grants = try LiveGrants(path: rolesFile, configured: configuration.roles, log: log,
                                    changed: GrantAudit.recorder(source: rolesFile ?? "config file", store: store))
        let transport = BinderyTransport(store: store, contract: try Contract.embedded(), grants: { grants.current() })
        let metrics = RequestMetrics()
        let vmmServer = try makeVMMSocket(store: store, reconciler: reconciler)
        try await vmmServer.start()
        vmmSocket = vmmServer
        var handler = APIHandler(store: store, reconciler: reconciler, capabilities: { reconciler.capabilities }, kernelReachable: { kernel.unreachableReason() }, metrics: metrics, memoryPolicy: memoryPolicy)
        handler.vmmSocketPath = vmmServer.path
        let signingKey = try AuditSigningKey.load(dataDirectory: configuration.dataDirectory, create: true)
        handler.signingKey = signingKey
        if let signingKey { checkpointer = AuditCheckpointer(store: store, key: signingKey, log: log) }
        transport.metrics = metrics
        transport.handler = handler
        try handler.registerHandlers(on: transport, configuration: APIHandler.codingConfiguration, middlewares: [MetricsMiddleware(metrics: metrics)])

        var http = HTTPServerConfiguration(listen: configuration.listen, tls: tls)
        if let loops = configuration.eventLoops { http.eventLoops = loops }
        let server = try HTTPServer(configuration: http, handler: transport, logger: log)
        try server.start()
        self.server = server
    }

    /// With a service manager's fd store (`NOTIFY_SOCKET`) on Linux, kernel descriptors are
    /// kept there and the ones handed back at start (`LISTEN_FDS`) are adopted.
    private func configureDescriptorStore(_ options: inout ReconcilerOptions, kernel: HostKernel) {
        let notifier = ServiceNotifier()
        let handedBack = ListenedDescriptors.take()
        guard notifier.isEnabled, kernel.driverName == "linux" else {
            if !handedBack.isEmpty {
                log("fd store: closing \(handedBack.count) descriptor(s) handed back: "
                    + (notifier.isEnabled ? "the simulated kernel's objects cannot be kept" : "no NOTIFY_SOCKET to keep them with"))
                handedBack.forEach { _ = Glibc.close($0.fd) }
            }
            if notifier.isEnabled { log("fd store: not used with the simulated kernel (its objects live in this process)") }
            return
        }
        options.descriptorStore = SystemdDescriptorStore(notifier: notifier, log: log)
        options.adoptedDescriptors = Dictionary(handedBack.map { ($0.name, $0.fd) }, uniquingKeysWith: { first, second in
            _ = Glibc.close(second)
            return first
        })
        log("fd store: kernel descriptors kept with the service manager; \(handedBack.count) handed back to adopt")
    }

    /// The VMM socket: `--vmm-socket` or `<data-dir>/vmm.sock` (absolute, so tokens name it
    /// usably), 0600, or 0660 with `--vmm-socket-group`.
    private func makeVMMSocket(store: Store, reconciler: Reconciler) throws -> VMMSocketServer {
        let path = configuration.vmmSocket ?? URL(fileURLWithPath: configuration.dataDirectory).standardizedFileURL.path + "/vmm.sock"
        var socket = VMMSocketServer.Configuration(path: path)
        if let name = configuration.vmmSocketGroup {
            guard let group = getgrnam(name) else { throw ConfigurationError(reason: "--vmm-socket-group \(name): no such group") }
            socket.group = group.pointee.gr_gid
            socket.mode = 0o660
        }
        return VMMSocketServer(configuration: socket, store: store, reconciler: reconciler, log: log)
    }

    /// The configured memory directories, or `<data-dir>/memory` (created 0700) by default.
    private func makeMemoryPolicy() throws -> GuestMemoryPolicy {
        var directories = configuration.memoryDirectories ?? []
        if configuration.memoryDirectories == nil {
            let absolute = URL(fileURLWithPath: configuration.dataDirectory).standardizedFileURL.path + "/memory"
            try FileManager.default.createDirectory(atPath: absolute, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            directories = [absolute]
        }
        do {
            return try GuestMemoryPolicy(directories: directories)
        } catch {
            throw ConfigurationError(reason: error.detail)
        }
    }

    /// Tells the service manager (when `NOTIFY_SOCKET` names one) that the service is ready
    /// once the first reconcile pass is done, and feeds its watchdog while the reconciler
    /// makes progress: a worker stuck past half the watchdog interval stops the feeding.
    package func notifyReady() async {
        let notifier = ServiceNotifier()
        guard notifier.isEnabled, let reconciler else { return }
        await reconciler.waitUntilIdle()
        do { try notifier.ready(status: "serving on \(boundAddresses.joined(separator: ", "))") } catch { log("\(error)") }
        guard let interval = notifier.watchdogInterval else { return }
        log("service manager watchdog: every \(interval / 2) while the reconciler makes progress")
        watchdog = Task {
            while !Task.isCancelled {
                if reconciler.isHealthy(stallLimit: interval / 2) { try? notifier.watchdog() }
                try? await Task.sleep(for: interval / 4)
            }
        }
    }

    /// SIGTERM/SIGINT stop the service gracefully; SIGHUP reloads certificates.
    package func installSignalHandlers() { server?.installSignalHandlers() }

    /// Waits until the HTTP server has stopped, then stops the reconciler.
    package func wait() async {
        if let server { await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                server.wait()
                continuation.resume()
            }
        } }
        try? ServiceNotifier().stopping()
        watchdog?.cancel()
        vmmSocket?.stop()
        await reconciler?.stop()
        await checkpointer?.stop()  // last: it signs everything the reconciler recorded
    }
}

/// A setting that cannot work, named with what is wrong.
package struct ConfigurationError: Error, CustomStringConvertible {
    let reason: String
    package var description: String { reason }
}
