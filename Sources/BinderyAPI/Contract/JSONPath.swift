/// Where a value sits in a request, as the contract's checks walk it: a prefix (`/query/limit`,
/// or empty for the body) and the keys and indexes below it. The JSON pointer (RFC 6901) is
/// written only when a problem names the place, so a valid request builds no pointer text.
struct JSONPath {
    /// One step down: an object member or an array element.
    enum Segment {
        case key(String)
        case index(Int)
    }

    private let prefix: String
    private var segments: [Segment] = []

    /// The path at `prefix`, a JSON pointer.
    init(_ prefix: String) {
        self.prefix = prefix
    }

    /// Steps down into `segment`.
    mutating func push(_ segment: Segment) { segments.append(segment) }

    /// Steps back up.
    mutating func pop() { segments.removeLast() }

    /// The JSON pointer: keys escaped (`~` as `~0`, `/` as `~1`).
    var pointer: String {
        var text = prefix
        for segment in segments {
            text += "/"
            switch segment {
            case let .key(key):
                for character in key.unicodeScalars {
                    switch character {
                    case "~": text += "~0"
                    case "/": text += "~1"
                    default: text.unicodeScalars.append(character)
                    }
                }
            case let .index(index): text += String(index)
            }
        }
        return text
    }
}
