/// A `pattern` made only of literals, escapes and character classes with quantifiers (`^vm-[0-9a-f]{32}$`),
/// matched without NSRegularExpression: every read by id checks its path parameter against one,
/// and ICU's matcher cost microseconds a request. Patterns with groups or alternation are not
/// simple (nil); they keep NSRegularExpression. `SimplePatternTests` holds the two equal, with
/// one deliberate difference: `$` is the end of the text (ECMA-262, which OpenAPI patterns
/// follow), where ICU also lets it match before a final line terminator, so `vm-…\n` is refused.
struct SimplePattern: Sendable {
    private struct Atom: Sendable {
        /// The scalars this atom matches (as sorted closed ranges).
        let ranges: [ClosedRange<UInt32>]
        /// How many times it must repeat.
        let minimum: Int
        /// How many times it may repeat.
        let maximum: Int

        func admits(_ scalar: Unicode.Scalar) -> Bool { ranges.contains { $0.contains(scalar.value) } }
    }

    /// The pattern, atom by atom.
    private let atoms: [Atom]
    /// `^`: a match starts at the text's start.
    private let anchoredStart: Bool
    /// `$`: a match ends at the text's end.
    private let anchoredEnd: Bool

    /// The pattern, if it is simple.
    init?(_ source: String) {
        var scalars = Array(source.unicodeScalars)
        anchoredStart = scalars.first == "^"
        if anchoredStart { scalars.removeFirst() }
        anchoredEnd = scalars.last == "$" && (scalars.count < 2 || scalars[scalars.count - 2] != "\\")
        if anchoredEnd { scalars.removeLast() }
        var atoms: [Atom] = []
        var index = 0
        func isDigit(_ scalar: Unicode.Scalar) -> Bool { ("0"..."9").contains(scalar) }
        while index < scalars.count {
            var ranges: [ClosedRange<UInt32>]
            let scalar = scalars[index]
            switch scalar {
            case "\\":
                guard index + 1 < scalars.count, ".-/^$[]{}()*+?|\\".unicodeScalars.contains(scalars[index + 1]) else { return nil }
                ranges = [scalars[index + 1].value...scalars[index + 1].value]
                index += 2
            case "[":
                index += 1
                guard index < scalars.count, scalars[index] != "^" else { return nil }
                ranges = []
                while index < scalars.count && scalars[index] != "]" {
                    var low = scalars[index]
                    if low == "\\" {
                        guard index + 1 < scalars.count, !("a"..."z").contains(scalars[index + 1]), !("A"..."Z").contains(scalars[index + 1])
                        else { return nil }
                        index += 1
                        low = scalars[index]
                    } else if low == "[" {
                        return nil
                    }
                    if index + 2 < scalars.count, scalars[index + 1] == "-", scalars[index + 2] == "\\" { return nil }  // [!-\~]
                    if index + 2 < scalars.count, scalars[index + 1] == "-", scalars[index + 2] != "]" {
                        guard low.value <= scalars[index + 2].value else { return nil }
                        ranges.append(low.value...scalars[index + 2].value)
                        index += 3
                    } else {
                        ranges.append(low.value...low.value)
                        index += 1
                    }
                }
                guard index < scalars.count, !ranges.isEmpty else { return nil }
                index += 1  // ]
            case ".", "(", ")", "|", "*", "+", "?", "{", "}", "^", "$", "]":
                return nil
            default:
                ranges = [scalar.value...scalar.value]
                index += 1
            }
            var minimum = 1, maximum = 1
            if index < scalars.count {
                switch scalars[index] {
                case "*": (minimum, maximum) = (0, Int.max); index += 1
                case "+": (minimum, maximum) = (1, Int.max); index += 1
                case "?": (minimum, maximum) = (0, 1); index += 1
                case "{":
                    var cursor = index + 1
                    func number() -> Int? {
                        var value = 0, digits = 0
                        while cursor < scalars.count, isDigit(scalars[cursor]), digits < 6 {
                            value = value * 10 + Int(scalars[cursor].value - 48)
                            cursor += 1
                            digits += 1
                        }
                        return digits > 0 ? value : nil
                    }
                    guard let low = number() else { return nil }
                    var high = low
                    if cursor < scalars.count, scalars[cursor] == "," {
                        cursor += 1
                        guard let upper = number() else { return nil }
                        high = upper
                    }
                    guard cursor < scalars.count, scalars[cursor] == "}", low <= high else { return nil }
                    (minimum, maximum) = (low, high)
                    index = cursor + 1
                default: break
                }
                if index < scalars.count, "*+?{".unicodeScalars.contains(scalars[index]) { return nil }  // lazy or stacked
            }
            atoms.append(Atom(ranges: ranges, minimum: minimum, maximum: maximum))
        }
        self.atoms = atoms
    }

    /// Whether `text` contains a match (anchors apply), as `firstMatch` would find one.
    func matches(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        if anchoredStart { return match(scalars, atom: 0, at: 0) }
        for start in 0...scalars.count where match(scalars, atom: 0, at: start) { return true }
        return false
    }

    private func match(_ scalars: [Unicode.Scalar], atom: Int, at position: Int) -> Bool {
        guard atom < atoms.count else { return !anchoredEnd || position == scalars.count }
        let current = atoms[atom]
        var count = 0
        while count < current.maximum, position + count < scalars.count, current.admits(scalars[position + count]) { count += 1 }
        while count >= current.minimum {
            if match(scalars, atom: atom + 1, at: position + count) { return true }
            count -= 1
        }
        return false
    }
}
