/// An OpenAPI path template (`/v1/vms/{id}`) matched against request paths.
struct PathTemplate: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(Substring)
        case parameter(String)
    }

    let segments: [Segment]

    init(_ template: String) {
        segments = template.split(separator: "/", omittingEmptySubsequences: true).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(part)
        }
    }

    /// The path parameters, when `path` matches (percent-decoded later by the generated code).
    func match(_ path: String) -> [String: Substring]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == segments.count else { return nil }
        var parameters: [String: Substring] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case let .literal(text): if text != part { return nil }
            case let .parameter(name): parameters[name] = part
            }
        }
        return parameters
    }
}
