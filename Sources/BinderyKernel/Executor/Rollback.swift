/// The undo log of one executor flow: each step that changed the kernel or the executor's
/// state registers how to undo itself; when a later step fails, the undos run in reverse
/// order, so the kernel and the executor are left as they were before the attempt.
struct Rollback {
    private var steps: [() throws(KernelError) -> Void] = []

    /// Registers how to undo the step that just succeeded.
    mutating func add(_ undo: @escaping () throws(KernelError) -> Void) {
        steps.append(undo)
    }

    /// Forgets every undo: the flow succeeded.
    mutating func commit() { steps.removeAll() }

    /// Runs every undo in reverse order (all of them, even after one fails) and returns the
    /// error the flow should throw: `error` itself when everything was undone, otherwise
    /// `.rollbackIncomplete` carrying `error` and what failed while undoing it.
    mutating func undo(after error: KernelError) -> KernelError {
        var failures: [KernelError] = []
        while let step = steps.popLast() {
            do throws(KernelError) { try step() } catch { failures.append(error) }
        }
        return failures.isEmpty ? error : .rollbackIncomplete(error: error, undo: failures)
    }
}
