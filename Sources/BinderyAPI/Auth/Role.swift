/// What a caller may do (API.md "Who may call").
package enum Role: String, Sendable, Codable, CaseIterable {
    /// Everything.
    case admin
    /// Create, change and delete VMs, assignments and bindings; read resources.
    case `operator`
    /// Read resources and the audit history; verify the chain. No writes.
    case auditor
    /// Read resources. Not the audit history.
    case reader
}

/// What an operation needs.
enum Permission: Sendable {
    /// Reading resources (every role).
    case readResources
    /// Reading the audit history (admin, auditor).
    case readAudit
    /// Changing desired state (admin, operator).
    case write
    /// The change feed (admin, operator — orchestrators watch it — and auditor).
    case watch
    /// Open to any caller with a valid certificate (health).
    case anyone

    func allows(_ role: Role?) -> Bool {
        switch (self, role) {
        case (.anyone, _): return true
        case (_, nil): return false
        case (.readResources, _): return true
        case (.readAudit, .admin?), (.readAudit, .auditor?): return true
        case (.write, .admin?), (.write, .operator?): return true
        case (.watch, .admin?), (.watch, .operator?), (.watch, .auditor?): return true
        default: return false
        }
    }

    /// The permission each operation id needs. Unknown operations need admin (fail closed).
    static func required(by operationID: String) -> Permission? {
        switch operationID {
        case "getHealth", "getReadiness", "getOpenAPI": return .anyone
        case "getMetrics": return .readResources
        case "getHost", "listVMs", "getVM", "listDevices", "getDevice", "getBinding", "listBindings": return .readResources
        case "listAuditEvents", "verifyAudit", "listAuditCheckpoints", "createAuditCheckpoint": return .readAudit
        case "watchEvents": return .watch
        case "createVM", "updateVM", "deleteVM", "assignDevice", "unassignDevice", "createBinding", "replacePageTable", "deleteBinding": return .write
        default: return nil
        }
    }
}
