import ArgumentParser
import BinderyAPI
import Foundation

/// `bindery pki ...`: the development PKI.
struct PKICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Manage the development PKI in <data-dir>/pki/.",
        subcommands: [IssueClientCommand.self]
    )
}

/// `bindery pki issue-client --name NAME --role ROLE`.
struct IssueClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue-client",
        abstract: "Mint a client certificate from the development CA and grant it a role.",
        discussion: """
            Writes <data-dir>/pki/NAME.pem and NAME-key.pem (identity spiffe://bindery.local/NAME) \
            and records the grant in <data-dir>/pki/roles.json as uri:spiffe://bindery.local/NAME. A running \
            `bindery serve` re-reads that file when it changes: a grant, a change of role or a removal \
            applies to the next request, no restart. Keys name the certificate field: uri:, dns: or cn:. \
            The development PKI is created first if it does not exist.
            """
    )

    @Option(help: "Client name: letters, digits, - and _.") var name: String
    @Option(help: "Role: admin, operator, auditor or reader.") var role: String
    @Option(name: .customLong("data-dir"), help: "Data directory (default ./bindery-data).") var dataDirectory = "./bindery-data"

    func run() throws {
        guard let granted = Role(rawValue: role) else { throw ValidationError("--role must be admin, operator, auditor or reader") }
        let pki = DevelopmentPKI(dataDirectory: dataDirectory)
        try pki.ensure()
        try pki.issueClient(name: name, role: granted)
        print("wrote \(pki.directory)/\(name).pem and \(name)-key.pem; \(DevelopmentPKI.identity(of: name)) has role \(granted.rawValue)")
    }
}
