/// The words statuses and the audit history are written in, as types: a misspelt phase,
/// reason or action is a compile error, not a silently new value.

/// Where a resource is in its life.
public enum Phase: String, Sendable, Codable, CaseIterable {
    /// Accepted; the kernel has not caught up yet (or waits for something).
    case pending = "Pending"
    /// A VM's IOMMU context is open.
    case ready = "Ready"
    /// A device is attached to its VM.
    case attached = "Attached"
    /// A device is assigned to no VM.
    case unassigned = "Unassigned"
    /// A binding's table is bound in the kernel.
    case bound = "Bound"
    /// Something it needs vanished; it recovers on its own when it returns.
    case degraded = "Degraded"
    /// The kernel or a policy refused; see the condition (terminal, or retried at `nextRetryAt`).
    case failed = "Failed"
    /// Torn down; a tombstone.
    case deleted = "Deleted"
}

/// What a status condition is about.
public enum ConditionType: String, Sendable, Codable, CaseIterable {
    /// A VM's context is open.
    case ready = "Ready"
    /// A device is attached.
    case attached = "Attached"
    /// A device is in the PCI inventory.
    case present = "Present"
    /// A binding's table is bound.
    case bound = "Bound"
}

/// Why a condition is as it is.
public enum ConditionReason: String, Sendable, Codable, CaseIterable {
    /// The VM's context is open.
    case contextOpen = "ContextOpen"
    /// The VM is accepted and holds nothing in the kernel: its context opens with its first device.
    case awaitingFirstDevice = "AwaitingFirstDevice"
    /// The device is attached.
    case attached = "Attached"
    /// The device is in the inventory.
    case present = "Present"
    /// The device is assigned to no VM.
    case unassigned = "Unassigned"
    /// The binding is bound.
    case bound = "Bound"
    /// Waiting for the device to be attached (or the context to report what it can bind).
    case waitingForDevice = "WaitingForDevice"
    /// Waiting for the VM's context.
    case waitingForVM = "WaitingForVM"
    /// The device left the PCI inventory.
    case deviceMissing = "DeviceMissing"
    /// The kernel answered an error; retried.
    case kernelError = "KernelError"
    /// Members of the device's IOMMU group are on other drivers or other VMs; retried.
    case groupNotViable = "GroupNotViable"
    /// The kernel says an object is gone (ENODEV, ENOENT); recovers on its own.
    case kernelResourceMissing = "KernelResourceMissing"
    /// The host cannot do this at all (terminal).
    case capabilityMissing = "CapabilityMissing"
    /// The host binds no such format, version or width (terminal).
    case formatNotSupported = "FormatNotSupported"
    /// The device policy refuses the device (terminal).
    case devicePolicy = "DevicePolicy"
    /// The memory policy refuses a backing file (terminal).
    case memoryPolicy = "MemoryPolicy"
    /// The daemon restarted; the kernel released everything; rebuilding.
    case kernelStateReleased = "KernelStateReleased"
    /// A VMM that received the VM's devices before a restart still holds them: not fought over.
    case heldByVMM = "HeldByVMM"
}

/// What an audit event records being done.
public enum AuditAction: String, Sendable, CaseIterable {
    /// A client created a VM.
    case vmCreate = "vm.create"
    /// A client changed a VM's name or labels.
    case vmUpdate = "vm.update"
    /// A client asked for a VM's deletion.
    case vmDelete = "vm.delete"
    /// The reconciler opened a VM's IOMMU context.
    case vmOpenContext = "vm.open-context"
    /// The reconciler tore a VM down.
    case vmTeardown = "vm.teardown"
    /// A client assigned a device.
    case deviceAssign = "device.assign"
    /// A client released a device.
    case deviceUnassign = "device.unassign"
    /// The reconciler attached a device.
    case deviceAttach = "device.attach"
    /// The reconciler detached a device.
    case deviceDetach = "device.detach"
    /// A client created a binding.
    case bindingCreate = "binding.create"
    /// A client replaced a binding's page table.
    case bindingReplace = "binding.replace"
    /// A client asked for a binding's deletion.
    case bindingDelete = "binding.delete"
    /// The reconciler bound a table.
    case bindingBind = "binding.bind"
    /// The reconciler replaced a bound table.
    case bindingRebind = "binding.rebind"
    /// The reconciler unbound a table.
    case bindingUnbind = "binding.unbind"
    /// A grant was given or changed.
    case grantSet = "grant.set"
    /// A grant was taken away.
    case grantRevoke = "grant.revoke"
    /// A client obtained a one-time attach token for a VM's VMM.
    case attachmentIssue = "attachment.issue"
    /// A VMM received a VM's descriptors over the VMM socket (or was refused).
    case vmmAttach = "vmm.attach"
    /// A VMM let go of a VM (its connection closed, or its process is gone).
    case vmmDetach = "vmm.detach"
}

import GRDB

/// Phases are stored as their names.
extension Phase: DatabaseValueConvertible {}
