import BinderyNotify
import BinderyReconciler

/// The reconciler's descriptor store in the service manager's fd store (`FDSTORE=1`,
/// `FDSTOREREMOVE=1`). A failure is logged: the kernel objects are still right, only a
/// restart would rebuild them instead of adopting them.
struct SystemdDescriptorStore: DescriptorStore {
    let notifier: ServiceNotifier
    let log: @Sendable (String) -> Void

    func keep(_ fd: Int32, name: String) {
        do { try notifier.store([fd], name: name) } catch { log("fd store: keeping \(name): \(error)") }
    }

    func forget(name: String) {
        do { try notifier.removeStored(name: name) } catch { log("fd store: dropping \(name): \(error)") }
    }
}
