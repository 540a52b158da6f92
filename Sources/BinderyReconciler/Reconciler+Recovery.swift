import BinderyStore

extension Reconciler {
    /// On start, every kernel object of the last process is gone (closing its fds released
    /// them). So: intents left open by a crash are closed as abandoned; host PASIDs are freed
    /// in the books; and whatever was Bound, Attached or Ready goes back to Pending, to be
    /// rebuilt once — which is why nothing can end up bound twice.
    ///
    /// VMs whose descriptors the last process kept in the service manager's fd store are
    /// adopted instead (`adoptKeptDescriptors`) and keep their state.
    func recoverAfterRestart() async throws {
        let adopted = try await adoptKeptDescriptors()
        let abandoned = try await store.write { db -> Int in
            let count = try OperationsJournal.abandonOpenIntents(
                reason: "interrupted by a restart; the kernel released everything the process held", in: db)
            try BindingRepository.forgetAllHostPASIDs(exceptVMs: adopted, in: db)
            let released = Condition(type: .bound, status: false, reason: .kernelStateReleased,
                                     message: "the daemon restarted; the binding will be rebuilt")
            for binding in try BindingRepository.live(in: db) where !adopted.contains(binding.spec.vmID)
                && (binding.phase != .pending || binding.hostPASID != nil) {
                try BindingRepository.updateStatus(binding.id, phase: .pending, conditions: [released],
                                                   observedGeneration: binding.observedGeneration, hostPASID: .some(nil), in: db)
            }
            try DeviceRepository.resetAttachedToPending(exceptVMs: adopted, in: db)
            try VMRepository.resetReadyToPending(exceptVMs: adopted, in: db)
            return count
        }
        if abandoned > 0 { log("recovered: \(abandoned) kernel actions were in flight when the last process stopped") }
    }
}
