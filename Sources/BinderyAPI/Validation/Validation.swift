/// Collects every invalid field of a request, then throws one 422 listing them all.
struct Validation {
    private(set) var errors: [(pointer: String, detail: String)] = []

    mutating func check(_ condition: Bool, _ pointer: String, _ detail: @autoclosure () -> String) {
        if !condition { errors.append((pointer, detail())) }
    }

    mutating func fail(_ pointer: String, _ detail: String) { errors.append((pointer, detail)) }

    /// Throws 422 `validation-failed` when anything was wrong.
    func throwIfInvalid() throws {
        guard !errors.isEmpty else { return }
        var error = APIError(status: 422, type: "validation-failed",
                             detail: errors.map { "\($0.pointer): \($0.detail)" }.joined(separator: "; "))
        error.fields = errors
        throw error
    }

    /// A list's `limit` (default 100), or a 422 when outside 1…1000.
    static func pageLimit(_ limit: Int?) throws -> Int {
        var validation = Validation()
        let value = limit ?? 100
        validation.check((1...1000).contains(value), "/limit", "between 1 and 1000")
        try validation.throwIfInvalid()
        return value
    }

    /// A VM name: 1–63 lowercase letters, digits and inner hyphens.
    mutating func checkVMName(_ name: String) {
        check(!name.isEmpty && name.count <= 63 && name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
              && name.first != "-" && name.last != "-", "/name", "1–63 lowercase letters, digits and hyphens, not starting or ending with a hyphen")
    }

    /// Labels: at most 64, keys 1–63 characters, values at most 256.
    mutating func checkLabels(_ labels: [String: String]) {
        check(labels.count <= 64, "/labels", "at most 64 labels")
        for (key, value) in labels where key.isEmpty || key.count > 63 || value.count > 256 {
            fail("/labels/\(key)", "keys are 1–63 characters, values at most 256")
        }
    }

    /// Parses `0x…` hex: 1–16 hex digits, nothing else (no sign, no spaces).
    static func hex(_ text: String) -> UInt64? {
        guard text.hasPrefix("0x") || text.hasPrefix("0X") else { return nil }
        let digits = text.utf8.dropFirst(2)
        guard (1...16).contains(digits.count), digits.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) else {
            return nil
        }
        return UInt64(text.dropFirst(2), radix: 16)
    }
}

extension APIError {
    /// 422 with a stable type for one field the caller got wrong.
    static func invalid(_ type: String, _ pointer: String, _ detail: String) -> APIError {
        var error = APIError(status: 422, type: type, detail: detail)
        error.fields = [(pointer, detail)]
        return error
    }

    /// 409 with a stable type.
    static func conflict(_ type: String, _ detail: String) -> APIError { APIError(status: 409, type: type, detail: detail) }
    /// 412: If-Match names an older resourceVersion.
    static func stale(_ current: Int) -> APIError {
        APIError(status: 412, type: "precondition-failed", detail: "If-Match does not match the current resourceVersion \"\(current)\"")
    }
    /// 404 for a resource id.
    static func missing(_ type: String, _ id: String) -> APIError { APIError(status: 404, type: "not-found", detail: "\(type) \(id) not found") }
}

/// The ETag of a resource version: `"7"`.
func etag(_ resourceVersion: Int) -> String { "\"\(resourceVersion)\"" }

/// `If-Match: "7"` (or `7`, or `*`) against the current resource version.
func checkIfMatch(_ header: String?, current: Int) throws {
    guard let header else { return }
    let value = header.trimmingCharacters(in: [" ", "\""]).replacingOccurrences(of: "W/", with: "")
    if value == "*" { return }
    guard Int(value.trimmingCharacters(in: ["\""])) == current else { throw APIError.stale(current) }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
