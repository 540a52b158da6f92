import ArgumentParser
import BinderyBuildInfo

/// The `bindery` command: the daemon and the tools around it.
@main
struct Bindery: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bindery",
        abstract: "Assign PCI devices to VMs and bind guest PASIDs through VFIO, with an audit trail.",
        discussion: """
            Bindery records desired state (VMs, device assignments, guest PASID bindings) in SQLite \
            under --data-dir, and keeps an append-only, hash-chained audit history of every change.

            Data directory layout: <data-dir>/bindery.sqlite (the database, WAL mode) and \
            <data-dir>/pki/ (the development PKI and roles.json).
            """,
        version: "bindery \(BuildInfo.summary)",
        subcommands: [ServeCommand.self, HostCommand.self, VMsCommand.self, DevicesCommand.self, BindingsCommand.self, AuditCommand.self, VMMCommand.self, PKICommand.self, MigrateCommand.self]
    )
}

/// The `--data-dir` option shared by every command that opens the database.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: ArgumentHelp(
        "Directory holding the database (bindery.sqlite) and the development PKI.",
        valueName: "dir"))
    var dataDirectory = "./bindery-data"
}
