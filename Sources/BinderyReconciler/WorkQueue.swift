/// Keys waiting to be reconciled. A key is never handed to two workers at once; a key added
/// while it is being worked on runs again afterwards. VMs go before devices, devices before
/// bindings, so prerequisites settle first.
actor WorkQueue {
    private var queues: [[ResourceKey]] = [[], [], []]
    private var queued: Set<ResourceKey> = []
    private var inProgress: Set<ResourceKey> = []
    private var dirty: Set<ResourceKey> = []
    private var delayed = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var isClosed = false

    private func lane(_ key: ResourceKey) -> Int {
        switch key {
        case .vm: return 0
        case .device: return 1
        case .binding: return 2
        }
    }

    /// Queues `key` (once).
    func add(_ key: ResourceKey) {
        guard !isClosed else { return }
        if inProgress.contains(key) { dirty.insert(key); return }
        guard queued.insert(key).inserted else { return }
        queues[lane(key)].append(key)
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// Queues `key` after `seconds` (retry with backoff).
    func add(_ key: ResourceKey, after seconds: Double) {
        guard !isClosed else { return }
        delayed += 1
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1e9))
            self.delayedArrived(key)
        }
    }

    private func delayedArrived(_ key: ResourceKey) {
        delayed -= 1
        add(key)
        signalIdleIfNeeded()
    }

    /// Up to `limit` keys of one kind (bindings batch; VMs and devices come one at a time),
    /// or nil once closed.
    func take(limit: Int) async -> [ResourceKey]? {
        while true {
            if isClosed { return nil }
            if let index = queues.firstIndex(where: { !$0.isEmpty }) {
                let count = index == 2 ? min(limit, queues[index].count) : 1
                let batch = Array(queues[index].prefix(count))
                queues[index].removeFirst(count)
                for key in batch {
                    queued.remove(key)
                    inProgress.insert(key)
                }
                return batch
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    /// Marks `keys` finished; re-queues the ones added meanwhile.
    func done(_ keys: [ResourceKey]) {
        for key in keys {
            inProgress.remove(key)
            if dirty.remove(key) != nil { add(key) }
        }
        signalIdleIfNeeded()
    }

    /// True when nothing is queued, running or waiting to retry.
    var isIdle: Bool { queued.isEmpty && inProgress.isEmpty && delayed == 0 }

    /// Returns once the queue is idle.
    func waitUntilIdle() async {
        if isIdle { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    private func signalIdleIfNeeded() {
        guard isIdle else { return }
        let waiting = idleWaiters
        idleWaiters.removeAll()
        waiting.forEach { $0.resume() }
    }

    /// Stops handing out work.
    func close() {
        isClosed = true
        waiters.forEach { $0.resume() }
        waiters.removeAll()
        idleWaiters.forEach { $0.resume() }
        idleWaiters.removeAll()
    }
}
