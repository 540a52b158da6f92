/// An OpenAPI path template (`/v1/vms/{id}`) matched against request paths.
struct PathTemplate: Sendable {
    enum Segment: Sendable, Equatable {
        case literal([UInt8])
        case parameter(String)
    }

    let segments: [Segment]

    init(_ template: String) {
        segments = template.split(separator: "/", omittingEmptySubsequences: true).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(Array(part.utf8))
        }
    }

    /// Where routing looks for this template: its segment count and first two segments when
    /// both are literal (`3 v1 vms`), else its segment count alone.
    var bucket: String {
        guard segments.count >= 2, case let .literal(first) = segments[0], case let .literal(second) = segments[1] else {
            return "\(segments.count)"
        }
        return "\(segments.count) " + String(decoding: first, as: UTF8.self) + " " + String(decoding: second, as: UTF8.self)
    }

    /// The buckets a request path may match in: its own (count and first two segments) and its count alone.
    /// One pass over the bytes, one string built for each (split into an array of segments
    /// and joined by concatenation, this was 2% of a GET's CPU).
    static func buckets(of path: String) -> (named: String, counted: String) {
        var count = 0
        var firstTwo: [UInt8] = []
        var inSegment = false
        for byte in path.utf8 {
            if byte == UInt8(ascii: "/") {
                inSegment = false
                continue
            }
            if !inSegment {
                inSegment = true
                count += 1
                if count <= 2 { firstTwo.append(UInt8(ascii: " ")) }
            }
            if count <= 2 { firstTwo.append(byte) }
        }
        let counted = String(count)
        return (counted + String(decoding: firstTwo, as: UTF8.self), counted)
    }

    /// The path parameters, when `path` matches (percent-decoded later by the generated code).
    func match(_ path: String) -> [String: Substring]? {
        var parameters: [String: Substring] = [:]
        return walk(path) { name, value in parameters[name] = value } ? parameters : nil
    }

    /// Compares `path`'s segments (empty ones skipped, as in `/v1//vms/`) with the template's,
    /// handing each parameter's segment to `found`.
    private func walk(_ path: String, _ found: (String, Substring) -> Void) -> Bool {
        let utf8 = path.utf8
        var index = utf8.startIndex
        var next = 0
        while true {
            while index != utf8.endIndex && utf8[index] == UInt8(ascii: "/") { index = utf8.index(after: index) }
            if index == utf8.endIndex { return next == segments.count }
            guard next < segments.count else { return false }
            let start = index
            while index != utf8.endIndex && utf8[index] != UInt8(ascii: "/") { index = utf8.index(after: index) }
            switch segments[next] {
            case let .literal(bytes):
                guard utf8[start..<index].elementsEqual(bytes) else { return false }
            case let .parameter(name):
                found(name, path[start..<index])
            }
            next += 1
        }
    }
}
