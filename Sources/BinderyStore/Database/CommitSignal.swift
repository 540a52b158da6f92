import Foundation

/// Wakes waiters after each durable commit, so a long-poll returns as soon as a newer
/// event exists instead of polling the database.
public final class CommitSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]

    /// A signal with no waiters.
    public init() {}

    /// Wakes everyone waiting.
    func fire() {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
        woken.forEach { $0.resume() }
    }

    /// Returns after the next commit, or after `timeout`, whichever comes first.
    public func wait(timeout: Duration) async {
        let id = UUID()
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.cancel(id)
        }
        await withCheckedContinuation { continuation in
            lock.withLock { waiters[id] = continuation }
        }
        timer.cancel()
    }

    private func cancel(_ id: UUID) {
        let continuation = lock.withLock { waiters.removeValue(forKey: id) }
        continuation?.resume()
    }
}
