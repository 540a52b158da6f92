extension Condition {
    /// Conditions read from exactly the text `encode` writes when no string in it needs an
    /// escape; nil for anything else (which `JSONDecoder` reads). A VM's conditions carry its
    /// own transition times, so their texts rarely recur: past the memo's 4,096 texts, paging
    /// through every VM decoded each with `JSONDecoder` (about 10 µs a VM).
    static func decodeStoredForm(_ text: String) -> [Condition]? {
        var text = text
        return text.withUTF8 { bytes -> [Condition]? in
            var reader = StoredFormReader(bytes: bytes)
            guard reader.take("[") else { return nil }
            var conditions: [Condition] = []
            if reader.take("]") { return reader.isAtEnd ? conditions : nil }
            repeat {
                // `JSONText.object` sorts the keys.
                guard reader.take(#"{"lastTransitionTime":"#), let time = reader.string(),
                      reader.take(#","message":"#), let message = reader.string(),
                      reader.take(#","reason":"#), let reason = reader.string().flatMap(ConditionReason.init(rawValue:)),
                      reader.take(#","status":"#), let status = reader.string(),
                      reader.take(#","type":"#), let type = reader.string().flatMap(ConditionType.init(rawValue:)),
                      reader.take("}") else { return nil }
                var condition = Condition(type: type, status: true, reason: reason, message: message, at: time)
                condition.status = status
                conditions.append(condition)
            } while reader.take(",")
            return reader.take("]") && reader.isAtEnd ? conditions : nil
        }
    }
}
