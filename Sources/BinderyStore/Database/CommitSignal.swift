import Foundation

/// Wakes waiters after each durable commit, so a long-poll returns as soon as a newer
/// event exists instead of polling the database.
public final class CommitSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    private var cancelledEarly: Set<UUID> = []   // cancelled before the waiter was registered

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

    /// Returns after the next commit, after `timeout`, or as soon as the calling task is
    /// cancelled (a client that hung up must not hold a waiter until its timeout).
    public func wait(timeout: Duration) async {
        let id = UUID()
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }   // cancelled: the wait is over
            self?.cancel(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let early = lock.withLock { () -> Bool in
                    if cancelledEarly.remove(id) != nil { return true }
                    waiters[id] = continuation
                    return false
                }
                if early { continuation.resume() }
            }
        } onCancel: {
            self.cancel(id)
        }
        timer.cancel()
        lock.withLock { _ = cancelledEarly.remove(id) }
    }

    private func cancel(_ id: UUID) {
        let continuation = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            guard let continuation = waiters.removeValue(forKey: id) else {
                cancelledEarly.insert(id)
                return nil
            }
            return continuation
        }
        continuation?.resume()
    }
}
