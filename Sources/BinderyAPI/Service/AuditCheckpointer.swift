import BinderyStore
import Foundation

/// Signs the audit chain's head now and then: once 10,000 events have passed the newest
/// checkpoint, or 10 minutes after it when there is anything new, and once more at shutdown.
final class AuditCheckpointer: Sendable {
    /// Events past the newest checkpoint that make a new one.
    static let eventInterval = 10_000
    /// Seconds after the newest checkpoint when any new event makes a new one.
    static let timeInterval: Double = 600

    private let store: Store
    private let key: AuditSigningKey
    private let log: @Sendable (String) -> Void
    private let task: Task<Void, Never>

    init(store: Store, key: AuditSigningKey, log: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.key = key
        self.log = log
        task = Task { [store, key, log] in
            while !Task.isCancelled {
                do {
                    let lag = try await store.read { db in try AuditCheckpoints.lag(in: db) }
                    if lag.events >= Self.eventInterval || (lag.events > 0 && (lag.seconds ?? .infinity) >= Self.timeInterval) {
                        try await store.write { db in _ = try AuditCheckpoints.create(with: key, in: db) }
                    }
                } catch {
                    log("audit checkpoint not signed: \(error)")
                }
                try? await Task.sleep(for: .seconds(10))
            }
        }
    }

    /// Stops the timer and signs the head one last time.
    func stop() async {
        task.cancel()
        do {
            if let checkpoint = try await store.write({ [key] db in try AuditCheckpoints.create(with: key, in: db) }) {
                log("audit checkpoint at seq \(checkpoint.seq) signed")
            }
        } catch {
            log("audit checkpoint at shutdown not signed: \(error)")
        }
    }
}
