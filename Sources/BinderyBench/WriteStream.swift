import ArgumentParser
import BinderyStore
import Foundation

/// A stream of concurrent durable writes that prints each acknowledgement as it arrives:
/// the child process of the crash test, which kills it with SIGKILL mid-stream.
struct WriteStream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-stream",
        abstract: "Write VMs concurrently, printing `ack <id>` once each write is durable."
    )

    @Option(name: .customLong("data-dir"), help: "Data directory of the database.")
    var dataDirectory: String
    @Option(help: "Concurrent writers.")
    var writers = 16
    @Option(help: "Stop after this many writes in total (the loop is always bounded).")
    var maxWrites = 200_000

    func run() async throws {
        let store = try Store(dataDirectory: dataDirectory)
        let budget = Budget(limit: maxWrites)
        let run = UUID().uuidString.prefix(8).lowercased()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    while let n = budget.take() {
                        let spec = VMSpec(name: "stream-\(run)-\(writer)-\(n)", memory: [MemoryRegion(guestAddress: 0x1000_0000, size: 1 << 20)])
                        let vm = try await store.write { db in
                            try VMRepository.create(spec, actor: AuditActor(identity: "write-stream"), in: db)
                        }
                        FileHandle.standardOutput.write(Data("ack \(vm.id)\n".utf8))
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

/// A shared countdown of writes still allowed.
final class Budget: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private let limit: Int
    init(limit: Int) { self.limit = limit }
    /// The next write's number, or nil when the budget is spent.
    func take() -> Int? {
        lock.withLock {
            guard next < limit else { return nil }
            defer { next += 1 }
            return next
        }
    }
}
