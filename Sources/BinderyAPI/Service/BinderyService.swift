import BinderyHTTP
import BinderyReconciler
import BinderyStore
import Foundation
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
        /// Role grants from the config file (win over `<data-dir>/pki/roles.json`).
        package var roles = RoleMap()
        /// Directories guest memory backing files may live beneath (nil: `<data-dir>/memory`).
        package var memoryDirectories: [String]?
        /// The device policy's allow list (empty: every device not of a host class and not in use).
        package var allowedDevices: [String] = []
        /// Event loops (nil: one per core).
        package var eventLoops: Int?

        /// The defaults.
        package init() {}
    }

    let configuration: Configuration
    let log: @Sendable (String) -> Void
    private var server: HTTPServer?
    private var reconciler: Reconciler?
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
                                         simulatedHost: configuration.simulatedHost, faults: configuration.faults)
        } catch let error as HostKernelError {
            throw ConfigurationError(reason: error.reason)
        }
        kernelDriver = kernel.driverName
        log("kernel driver: \(kernel.driverName) (release \(kernel.release); \(kernel.why))")

        let store = try Store(dataDirectory: configuration.dataDirectory)
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
        let reconciler = Reconciler(store: store, kernel: kernel, options: options, logger: log)
        try await reconciler.start()
        self.reconciler = reconciler

        let pki = DevelopmentPKI(dataDirectory: configuration.dataDirectory)
        let tls: TLSConfiguration
        if let configured = configuration.tls {
            tls = configured
        } else {
            if try pki.ensure() { log("created a development PKI in \(pki.directory) (CA, server and admin certificates)") }
            tls = TLSConfiguration(certificatePath: pki.directory + "/server.pem", privateKeyPath: pki.directory + "/server-key.pem",
                                   clientCABundlePath: pki.directory + "/ca.pem")
        }
        let grants = try LiveGrants(path: pki.roleMapPath, configured: configuration.roles, log: log,
                                    changed: GrantAudit.recorder(source: pki.roleMapPath, store: store))
        let transport = BinderyTransport(store: store, contract: try Contract.embedded(), grants: { grants.current() })
        let metrics = RequestMetrics()
        let handler = APIHandler(store: store, reconciler: reconciler, capabilities: { reconciler.capabilities }, kernelReachable: { kernel.unreachableReason() }, metrics: metrics, memoryPolicy: memoryPolicy)
        try handler.registerHandlers(on: transport, configuration: .init(dateTranscoder: RFC3339.Transcoder()), middlewares: [MetricsMiddleware(metrics: metrics)])

        var http = HTTPServerConfiguration(listen: configuration.listen, tls: tls)
        if let loops = configuration.eventLoops { http.eventLoops = loops }
        let server = try HTTPServer(configuration: http, handler: transport, logger: log)
        try server.start()
        self.server = server
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
        await reconciler?.stop()
    }
}

/// A setting that cannot work, named with what is wrong.
package struct ConfigurationError: Error, CustomStringConvertible {
    let reason: String
    package var description: String { reason }
}
