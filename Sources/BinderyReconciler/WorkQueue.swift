import Synchronization

/// Keys waiting to be reconciled. A key is never handed to two workers at once; a key added
/// while it is being worked on runs again afterwards. VMs go before devices, devices before
/// bindings, so prerequisites settle first.
///
/// `add` is synchronous: once it returns, the key is visible to `waitUntilIdle`, so a caller
/// that wakes a key and then waits for idleness can never see an idle queue before the work
/// exists. State lives behind one mutex; continuations are resumed outside it.
final class WorkQueue: Sendable {
    private struct Waiter {
        let limit: Int
        let continuation: CheckedContinuation<[ResourceKey]?, Never>
    }

    private struct State {
        var lanes: [[ResourceKey]] = [[], [], []]
        var queued: Set<ResourceKey> = []
        var inProgress: Set<ResourceKey> = []
        var dirty: Set<ResourceKey> = []
        var delayed = 0
        var waiters: [Waiter] = []
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
        var isClosed = false
        var lastProgress = ContinuousClock.now

        var isIdle: Bool { queued.isEmpty && inProgress.isEmpty && delayed == 0 }

        static func lane(_ key: ResourceKey) -> Int {
            switch key {
            case .vm: return 0
            case .device: return 1
            case .binding: return 2
            }
        }

        /// Queues `key` unless it is queued already or running (then it runs again after).
        mutating func enqueue(_ key: ResourceKey) {
            guard !isClosed else { return }
            if inProgress.contains(key) { dirty.insert(key); return }
            if queued.isEmpty && inProgress.isEmpty { lastProgress = .now }   // the stall clock starts with work
            guard queued.insert(key).inserted else { return }
            lanes[Self.lane(key)].append(key)
        }

        /// Takes the next batch: up to `limit` VMs or bindings, or one device.
        mutating func nextBatch(limit: Int) -> [ResourceKey]? {
            guard let index = lanes.firstIndex(where: { !$0.isEmpty }) else { return nil }
            let count = index == 1 ? 1 : min(max(1, limit), lanes[index].count)
            let batch = Array(lanes[index].prefix(count))
            lanes[index].removeFirst(count)
            for key in batch {
                queued.remove(key)
                inProgress.insert(key)
            }
            return batch
        }

        /// Hands queued work to waiting workers; returns the resumptions to run outside the lock.
        mutating func dispatch() -> [() -> Void] {
            var resumes: [() -> Void] = []
            while !waiters.isEmpty, let batch = nextBatch(limit: waiters[0].limit) {
                let waiter = waiters.removeFirst()
                resumes.append { waiter.continuation.resume(returning: batch) }
            }
            if isIdle && !idleWaiters.isEmpty {
                let idle = idleWaiters
                idleWaiters.removeAll()
                resumes.append { idle.forEach { $0.resume() } }
            }
            return resumes
        }
    }

    private let state = Mutex(State())

    private func mutate(_ body: (inout State) -> Void) {
        let resumes = state.withLock { state -> [() -> Void] in
            body(&state)
            return state.dispatch()
        }
        resumes.forEach { $0() }
    }

    /// Queues `key` (once). Visible to `take` and `waitUntilIdle` when this returns.
    func add(_ key: ResourceKey) {
        mutate { $0.enqueue(key) }
    }

    /// Queues `key` after `seconds` (retry with backoff). The queue is not idle meanwhile.
    func add(_ key: ResourceKey, after seconds: Double) {
        var accepted = false
        mutate { state in
            guard !state.isClosed else { return }
            state.delayed += 1
            accepted = true
        }
        guard accepted else { return }
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, min(seconds, 86_400)) * 1e9))
            self.mutate { state in
                state.delayed -= 1
                state.enqueue(key)
            }
        }
    }

    /// Up to `limit` keys of one kind (VMs and bindings batch; devices come one at a time),
    /// or nil once closed.
    func take(limit: Int) async -> [ResourceKey]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[ResourceKey]?, Never>) in
            let immediate = state.withLock { state -> [ResourceKey]?? in
                if state.isClosed { return .some(nil) }
                if let batch = state.nextBatch(limit: limit) { return .some(batch) }
                state.waiters.append(Waiter(limit: limit, continuation: continuation))
                return .none
            }
            if let result = immediate { continuation.resume(returning: result) }
        }
    }

    /// Marks `keys` finished; re-queues the ones added meanwhile.
    func done(_ keys: [ResourceKey]) {
        mutate { state in
            state.lastProgress = .now
            for key in keys {
                state.inProgress.remove(key)
                if state.dirty.remove(key) != nil { state.enqueue(key) }
            }
        }
    }

    /// True when nothing is queued, running or waiting to retry.
    var isIdle: Bool { state.withLock { $0.isIdle } }

    /// The keys queued and not yet taken.
    var queuedKeys: Set<ResourceKey> { state.withLock { $0.queued } }

    /// True when work is queued or running and none finished for `limit`: a worker is stuck.
    func isStalled(after limit: Duration) -> Bool {
        state.withLock { state in
            !(state.queued.isEmpty && state.inProgress.isEmpty) && ContinuousClock.now - state.lastProgress > limit
        }
    }

    /// Returns once the queue is idle (or closed).
    func waitUntilIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.isIdle || state.isClosed { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Stops handing out work and releases everyone waiting.
    func close() {
        let (workers, idle) = state.withLock { state in
            state.isClosed = true
            defer { state.waiters.removeAll(); state.idleWaiters.removeAll() }
            return (state.waiters, state.idleWaiters)
        }
        workers.forEach { $0.continuation.resume(returning: nil) }
        idle.forEach { $0.resume() }
    }
}
