import BinderyStore
import Foundation

/// Audits refusals without letting a caller grow the database: an identity's first denial in a
/// window (a minute) is an audit event at once; further denials in that window are only
/// counted, and the count rides on that identity's next audited denial. Memory is bounded too.
actor DenialRecorder {
    private struct Window {
        var start: Double
        var suppressed: Int
    }

    private let store: Store
    private let window: Double
    private let maxIdentities: Int
    private var windows: [String: Window] = [:]

    /// A recorder writing to `store`, one event per identity per `window` seconds.
    init(store: Store, window: Double = 60, maxIdentities: Int = 10_000) {
        self.store = store
        self.window = window
        self.maxIdentities = maxIdentities
    }

    /// Records that `actor` was refused `operation` on `path`.
    func record(_ actor: AuditActor, requestID: String, operation: String, path: String) async {
        let now = ProcessInfo.processInfo.systemUptime
        if var current = windows[actor.identity], now - current.start < window {
            current.suppressed += 1
            windows[actor.identity] = current
            return
        }
        let suppressed = windows[actor.identity]?.suppressed ?? 0
        windows[actor.identity] = Window(start: now, suppressed: 0)
        if windows.count > maxIdentities { forgetOldest(now: now) }
        let details = suppressed > 0 ? JSONText.object([("deniedRequestsNotAuditedBefore", String(suppressed))]) : nil
        let record = AuditRecord(actor: actor, requestID: requestID, action: operation, resourceType: "api",
                                 resourceID: String(path.prefix(256)), outcome: .denied, httpStatus: 403, after: details)
        _ = try? await store.write { db in try AuditChain.append(record, in: db) }
    }

    /// How many identities are tracked now (for tests).
    var trackedIdentities: Int { windows.count }

    private func forgetOldest(now: Double) {
        windows = windows.filter { now - $0.value.start < window }
        if windows.count > maxIdentities {
            let keep = windows.sorted { $0.value.start > $1.value.start }.prefix(maxIdentities / 2)
            windows = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
    }
}
