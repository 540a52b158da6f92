import ArgumentParser
import BinderyStore
import Foundation

/// `bindery audit ...`: work with the audit history.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Inspect the audit history: verify the chain in a data directory, or list events from a server.",
        subcommands: [AuditVerifyCommand.self, AuditListCommand.self]
    )
}

/// `bindery audit verify`: walk the hash chain.
struct AuditVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify the audit history's hash chain.",
        discussion: """
            Walks every event in seq order, checking that each links to the previous event's \
            hash and that its own hash matches its contents. Exit 0 and the head hash when the \
            chain verifies; exit 1 and the first broken seq when it does not.
            """
    )

    @OptionGroup var data: DataDirectoryOptions

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let store: Store
        do {
            store = try Store(dataDirectory: data.dataDirectory)
        } catch let error as StoreError {
            throw CommandFailure(error.description)
        }
        // The data dir's signing key is the only one whose checkpoints count.
        let key = try AuditSigningKey.load(dataDirectory: data.dataDirectory, create: false)
        let result = try AuditChain.verify(reading: store.pool, trustedKey: key?.publicKey)
        if json {
            var object: [String: Any] = ["valid": result.isValid, "events": result.events, "head": result.head]
            if let seq = result.firstBrokenSeq { object["firstBrokenSeq"] = seq }
            if let reason = result.reason { object["reason"] = reason }
            object["checkpoints"] = result.checkpoints
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else if result.isValid {
            print("audit chain valid: \(result.events) events, head \(result.head), \(result.checkpoints) signed checkpoint(s) match")
        } else {
            print("audit chain BROKEN at seq \(result.firstBrokenSeq ?? 0): \(result.reason ?? "") (\(result.events) events before it verify)")
        }
        if !result.isValid { throw ExitCode(1) }
    }
}
