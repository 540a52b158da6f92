import BinderyKernel
import Foundation

/// Counts of what the reconciler did, for `/metrics`.
public final class ReconcileStatistics: @unchecked Sendable {
    private let lock = NSLock()
    private var outcomes: [String: Int] = [:]      // "kind outcome" → count
    private var kernelErrors: [String: Int] = [:]  // "call errno" → count

    /// An empty set of counters.
    public init() {}

    /// Records one reconcile action of `kind` (vm, device, binding) and how it ended.
    func record(_ kind: String, succeeded: Bool, error: KernelError? = nil) {
        lock.withLock {
            outcomes["\(kind) \(succeeded ? "success" : "failure")", default: 0] += 1
            if let error { kernelErrors["\(error.call) \(error.errno?.name ?? "none")", default: 0] += 1 }
        }
    }

    /// (kind, outcome, count) for every pair seen.
    public var outcomeCounts: [(kind: String, outcome: String, count: Int)] {
        lock.withLock { outcomes.map { key, count in
            let parts = key.split(separator: " ")
            return (String(parts[0]), String(parts[1]), count)
        }.sorted { ($0.kind, $0.outcome) < ($1.kind, $1.outcome) } }
    }

    /// (ioctl, errno, count) for every kernel error seen.
    public var kernelErrorCounts: [(call: String, errno: String, count: Int)] {
        lock.withLock { kernelErrors.map { key, count in
            let parts = key.split(separator: " ")
            return (String(parts[0]), String(parts[1]), count)
        }.sorted { ($0.call, $0.errno) < ($1.call, $1.errno) } }
    }
}
