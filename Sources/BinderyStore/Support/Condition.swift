import Foundation

/// One status condition, as Kubernetes-style clients expect (`type`, `status`, `reason`, `message`).
public struct Condition: Sendable, Equatable, Codable {
    /// What the condition is about.
    public var type: ConditionType
    /// `True`, `False` or `Unknown`.
    public var status: String
    /// A CamelCase machine reason: `WaitingForDevice`, `KernelError`, `CapabilityMissing`.
    public var reason: ConditionReason
    /// A human sentence.
    public var message: String
    /// When `status` last changed (RFC 3339).
    public var lastTransitionTime: String

    /// A condition from its parts.
    public init(type: ConditionType, status: Bool, reason: ConditionReason, message: String, at time: String = Timestamp.now()) {
        self.type = type
        self.status = status ? "True" : "False"
        self.reason = reason
        self.message = message
        lastTransitionTime = time
    }

    /// Conditions as stored JSON.
    public static func encode(_ conditions: [Condition]) -> String {
        JSONText.array(conditions.map { condition in
            JSONText.object([("type", JSONText.string(condition.type.rawValue)), ("status", JSONText.string(condition.status)),
                             ("reason", JSONText.string(condition.reason.rawValue)), ("message", JSONText.string(condition.message)),
                             ("lastTransitionTime", JSONText.string(condition.lastTransitionTime))])
        })
    }

    /// Conditions from stored JSON (every read of a resource decodes them): read in place when
    /// in `encode`'s plain form, else decoded and remembered by their text.
    public static func decode(_ text: String) -> [Condition] {
        if text == "[]" { return [] }
        if let plain = decodeStoredForm(text) { return plain }
        return decoded.value(for: text) { (try? JSONDecoder().decode([Condition].self, from: Data($0.utf8))) ?? [] }
    }

    /// Decoded conditions whose text needs escapes (or is not `encode`'s), by their stored text.
    private static let decoded = TextMemo<[Condition]>(capacity: 4096)

    /// `next` merged into `existing`: one condition per type, keeping the transition time when
    /// the status did not change.
    public static func merge(_ existing: [Condition], _ next: [Condition]) -> [Condition] {
        var merged = existing
        for condition in next {
            if let index = merged.firstIndex(where: { $0.type == condition.type }) {
                var updated = condition
                if merged[index].status == condition.status { updated.lastTransitionTime = merged[index].lastTransitionTime }
                merged[index] = updated
            } else {
                merged.append(condition)
            }
        }
        return merged
    }
}
