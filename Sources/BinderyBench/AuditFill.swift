import ArgumentParser
import BinderyStore
import Foundation

/// Fills a database's audit history fast, for `make bench-audit`: events go through
/// `AuditChain.append` (so the chain and its hashes are real) in large transactions.
struct AuditFill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit-fill",
        abstract: "Append N audit events to <data-dir>'s history (for make bench-audit).",
        discussion: """
            Events look like the API's: vm, device and binding creates, updates and deletes by a \
            few identities, with before/after JSON of a few hundred bytes. One event in 1,000 is \
            a denial by a reader (so outcome=denied matches a little), none is failed (so \
            outcome=failed matches nothing). Written 10,000 to a transaction.
            """
    )

    @Option(name: .customLong("data-dir"), help: "The data directory (created if missing).")
    var dataDirectory: String
    @Option(help: "Events to append.")
    var events = 1_000_000

    func run() async throws {
        guard events > 0 else { throw ValidationError("--events must be positive") }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let store = try Store(dataDirectory: dataDirectory)
        let started = ContinuousClock.now
        let actors = ["spiffe://fleet/nova", "spiffe://fleet/kubelet-7", "spiffe://fleet/admin"]
        let kinds = [("vm", "vm"), ("device", "device"), ("binding", "binding")]
        let verbs = ["create", "update", "delete"]
        for batch in stride(from: 0, to: events, by: 10_000) {
            let count = min(10_000, events - batch)
            try await store.write { db in
                for offset in 0..<count {
                    let n = batch + offset
                    let (type, prefix) = kinds[n % 3]
                    let id = "\(prefix)-\(n / 7 % 100_000)"
                    let record: AuditRecord
                    if n % 1000 == 999 {
                        record = AuditRecord(actor: AuditActor(identity: "spiffe://fleet/reader", role: "reader", remoteAddress: "10.0.0.9:40000"),
                                             requestID: "req-\(n)", action: "\(type).create", resourceType: type, resourceID: nil,
                                             outcome: .denied, httpStatus: 403)
                    } else {
                        let body = #"{"id":"\#(id)","name":"workload-\#(n % 5000)","resourceVersion":\#(n % 9 + 1),"memory":[{"guestPhysicalAddress":"0x0","size":"0x40000000"}],"devices":["0000:3b:00.\#(n % 8)"],"status":{"phase":"Running"}}"#
                        let verb = verbs[n / 3 % 3]
                        record = AuditRecord(actor: AuditActor(identity: actors[n % actors.count], role: n % 3 == 2 ? "admin" : "operator",
                                                               remoteAddress: "10.0.0.\(n % 200):\(40000 + n % 20000)"),
                                             requestID: "req-\(n)", action: "\(type).\(verb)", resourceType: type, resourceID: id,
                                             outcome: .success, httpStatus: verb == "create" ? 201 : 200,
                                             before: verb == "create" ? nil : body, after: verb == "delete" ? nil : body)
                    }
                    try AuditChain.append(record, in: db)
                }
            }
            if batch % 100_000 == 0 { FileHandle.standardError.write(Data("audit-fill: \(batch + count) events\n".utf8)) }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        print(String(format: #"{"events":%d,"seconds":%.1f,"eventsPerSecond":%.0f}"#, events, seconds, Double(events) / seconds))
    }
}
