import ArgumentParser
import BinderyAPI
import BinderyHTTP
import Foundation
import Logging

/// `bindery serve`: run the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Bindery daemon: the HTTPS API, the reconciler and the kernel executor.",
        discussion: """
            Every setting comes from, in order of precedence: a flag, a BINDERY_* environment \
            variable, the JSON config file (--config or BINDERY_CONFIG), the default.

            With no TLS settings, the first start creates a development PKI in <data-dir>/pki/ \
            (ca.pem, server.pem, admin.pem and their -key.pem; admin.pem has the admin role) and \
            prints a curl line that works. `bindery pki issue-client` makes more client certificates. \
            With --tls-cert, --tls-key and --client-ca (or config tls), nothing under pki/ is created \
            or read: grants come from the config's roles and --roles-file.

            Kernel: `auto` drives Linux where /dev/vfio/vfio exists and the simulated kernel \
            elsewhere; the first log line says which.

            Guest memory: a VM's memory[].backing.path must be a regular (or hugetlbfs) file beneath \
            one of the memory directories, opened without following symlinks; by default the only \
            one is <data-dir>/memory (created 0700). Name a hugetlbfs mount with --memory-dir too.

            Devices: by default every device may be assigned except storage, display and bridge \
            classes; --allow-device lists the assignable ones instead. A device whose driver backs \
            something the host uses (an interface that is up, an NVMe namespace) never is. \
            `GET /v1/devices` says per device whether it is assignable and why not.

            VMMs: the process that runs a VM gets its devices over the VMM socket with a one-time \
            token (POST /v1/vms/{id}/attachments, or `bindery vmm attach --vm ID -- COMMAND`).

            Config file keys (an unknown key is an error): dataDir, listen (list), kernel, sysfsRoot, \
            simulatedHost, faults, memoryDirectories (list), vmmSocket, vmmSocketGroup, devicePolicy \
            {allow (list)}, tls {certificate, key, clientCA, crl}, roles {identity: role}, rolesFile, \
            logFormat. An identity is uri:…, dns:… or cn:… (the certificate field it must come from). \
            Roles: admin, operator, auditor, reader. Grants in the roles file apply as soon as it \
            changes; the config's roles win over it.

            Signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the TLS files.
            """
    )

    @Option(help: "JSON config file. Env: BINDERY_CONFIG.") var config: String?
    @Option(name: .customLong("data-dir"), help: "Database and development PKI directory (default ./bindery-data). Env: BINDERY_DATA_DIR.")
    var dataDirectory: String?
    @Option(help: "Listen address, repeatable: 127.0.0.1:8443, [::1]:8443 (default 127.0.0.1:8443). Env: BINDERY_LISTEN (comma-separated).")
    var listen: [String] = []
    @Option(help: "Kernel: auto, linux or simulated (default auto). Env: BINDERY_KERNEL.") var kernel: String?
    @Option(name: .customLong("sysfs-root"), help: "Sysfs mount for the Linux kernel (default /sys). Env: BINDERY_SYSFS_ROOT.") var sysfsRoot: String?
    @Option(name: .customLong("simulated-host"), help: "What the simulated kernel pretends to be: \(BinderyService.simulatedHostNames.joined(separator: ", ")) (default type1-nesting). Env: BINDERY_SIMULATED_HOST.")
    var simulatedHost: String?
    @Option(help: "Simulated kernel fault plan, e.g. VFIO_IOMMU_NESTING_OP=EBUSY@rate:0.1. Env: BINDERY_FAULTS.") var faults: String?
    @Option(name: .customLong("tls-cert"), help: "Server certificate chain (PEM). Env: BINDERY_TLS_CERT.") var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "Server private key (PEM). Env: BINDERY_TLS_KEY.") var tlsKey: String?
    @Option(name: .customLong("client-ca"), help: "CA bundle client certificates must chain to (PEM). Env: BINDERY_CLIENT_CA.") var clientCA: String?
    @Option(help: "CRL file checked against client certificates (PEM). Env: BINDERY_CRL.") var crl: String?
    @Option(name: .customLong("memory-dir"), help: "Directory guest memory files may live beneath, repeatable (default <data-dir>/memory). Env: BINDERY_MEMORY_DIRS (comma-separated).")
    var memoryDirectories: [String] = []
    @Option(name: .customLong("allow-device"), help: "Device policy: a device that may be assigned, repeatable: an address (0000:3b:00.0), vendor:device (8086:0b25) or class:0x…; once any is given, only those. Default: every device except storage, display and bridge classes. Devices the host uses are never assignable. Env: BINDERY_ALLOW_DEVICES (comma-separated).")
    var allowedDevices: [String] = []
    @Option(name: .customLong("vmm-socket"), help: "Unix socket where VMMs receive their VM's descriptors with a token from POST /v1/vms/{id}/attachments (default <data-dir>/vmm.sock, mode 0600). Env: BINDERY_VMM_SOCKET.")
    var vmmSocket: String?
    @Option(name: .customLong("vmm-socket-group"), help: "Group allowed to connect to the VMM socket (mode 0660). Env: BINDERY_VMM_SOCKET_GROUP.")
    var vmmSocketGroup: String?
    @Option(name: .customLong("roles-file"), help: "JSON file of grants, identity to role, reloaded when it changes (default <data-dir>/pki/roles.json with the development PKI, none with --tls-cert). Env: BINDERY_ROLES_FILE.")
    var rolesFile: String?
    @Option(name: .customLong("log-format"), help: "text or json (default text). Env: BINDERY_LOG_FORMAT.") var logFormat: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let file = try ConfigFile.load(config ?? environment["BINDERY_CONFIG"])
        var settings = BinderyService.Configuration()
        settings.dataDirectory = dataDirectory ?? environment["BINDERY_DATA_DIR"] ?? file.dataDir ?? settings.dataDirectory
        settings.listen = !listen.isEmpty ? listen : environment["BINDERY_LISTEN"].map { $0.split(separator: ",").map(String.init) }
            ?? file.listen ?? settings.listen
        let kernelName = kernel ?? environment["BINDERY_KERNEL"] ?? file.kernel ?? "auto"
        guard let choice = BinderyService.KernelChoice(rawValue: kernelName) else {
            throw ValidationError("--kernel must be auto, linux or simulated, not \(kernelName)")
        }
        settings.kernel = choice
        settings.sysfsRoot = sysfsRoot ?? environment["BINDERY_SYSFS_ROOT"] ?? file.sysfsRoot ?? settings.sysfsRoot
        settings.faults = faults ?? environment["BINDERY_FAULTS"] ?? file.faults ?? ""
        let hostName = simulatedHost ?? environment["BINDERY_SIMULATED_HOST"] ?? file.simulatedHost ?? settings.simulatedHost
        guard BinderyService.simulatedHostNames.contains(hostName) else {
            throw ValidationError("--simulated-host must be one of \(BinderyService.simulatedHostNames.joined(separator: ", ")), not \(hostName)")
        }
        settings.simulatedHost = hostName
        let certificate = tlsCertificate ?? environment["BINDERY_TLS_CERT"] ?? file.tls?.certificate
        let key = tlsKey ?? environment["BINDERY_TLS_KEY"] ?? file.tls?.key
        let ca = clientCA ?? environment["BINDERY_CLIENT_CA"] ?? file.tls?.clientCA
        switch (certificate, key, ca) {
        case (nil, nil, nil): break
        case let (certificate?, key?, ca?):
            settings.tls = TLSConfiguration(certificatePath: certificate, privateKeyPath: key, clientCABundlePath: ca,
                                            crlPath: crl ?? environment["BINDERY_CRL"] ?? file.tls?.crl)
        default: throw ValidationError("--tls-cert, --tls-key and --client-ca go together (or none, for the development PKI)")
        }
        settings.roles = try file.roleGrants()
        settings.rolesFile = rolesFile ?? environment["BINDERY_ROLES_FILE"] ?? file.rolesFile
        settings.allowedDevices = !allowedDevices.isEmpty ? allowedDevices
            : environment["BINDERY_ALLOW_DEVICES"].map { $0.split(separator: ",").map(String.init) } ?? file.devicePolicy?.allow ?? []
        settings.memoryDirectories = !memoryDirectories.isEmpty ? memoryDirectories
            : environment["BINDERY_MEMORY_DIRS"].map { $0.split(separator: ",").map(String.init) } ?? file.memoryDirectories
        settings.vmmSocket = vmmSocket ?? environment["BINDERY_VMM_SOCKET"] ?? file.vmmSocket
        settings.vmmSocketGroup = vmmSocketGroup ?? environment["BINDERY_VMM_SOCKET_GROUP"] ?? file.vmmSocketGroup
        let format = logFormat ?? environment["BINDERY_LOG_FORMAT"] ?? file.logFormat ?? "text"
        guard ["text", "json"].contains(format) else { throw ValidationError("--log-format must be text or json, not \(format)") }
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, json: format == "json") }
        let logger = Logging.Logger(label: "bindery")
        let log = LogLine(logger: logger)

        let pki = DevelopmentPKI(dataDirectory: settings.dataDirectory)
        let firstStart = settings.tls == nil && !pki.exists
        let service = BinderyService(configuration: settings, log: log.line)
        try await service.start()
        service.installSignalHandlers()
        log.line("serving https on \(service.boundAddresses.joined(separator: ", ")), data in \(settings.dataDirectory)")
        if firstStart, let address = service.boundAddresses.first {
            let directory = (pki.directory as NSString).standardizingPath
            FileHandle.standardOutput.write(Data("""

                Try it (admin certificate, created just now; shown only on first start):
                  curl --cacert \(directory)/ca.pem --cert \(directory)/admin.pem --key \(directory)/admin-key.pem https://\(address.replacingOccurrences(of: "127.0.0.1", with: "localhost"))/v1/host


                """.utf8))
        }
        await service.notifyReady()
        await service.wait()
    }
}

/// The service's one-line events, through swift-log.
struct LogLine: Sendable {
    let logger: Logging.Logger
    func line(_ message: String) { logger.info("\(message)") }
}
