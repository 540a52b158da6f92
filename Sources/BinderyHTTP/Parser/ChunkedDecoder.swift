/// Decodes a chunked request body incrementally, enforcing the body and trailer limits.
public struct ChunkedDecoder: Sendable {
    /// What a call to `decode` found.
    public enum Progress: Equatable {
        /// Consumed this many bytes; more are needed.
        case needMore(consumed: Int)
        /// The body is complete; this many bytes were consumed (through the final CRLF).
        case done(consumed: Int)
        /// The body is malformed or too large.
        case failure(HTTPParseError)
    }

    private enum State: Sendable { case size, data(remaining: Int), dataEnd, trailer(bytes: Int) }

    private var state = State.size
    private let limits: HTTPLimits
    /// The decoded body so far.
    public private(set) var body: [UInt8] = []

    /// A decoder for one body.
    public init(limits: HTTPLimits = HTTPLimits()) { self.limits = limits }

    private static let maxSizeLine = 1024

    /// Consumes as much of `bytes` as it can.
    public mutating func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> Progress {
        var cursor = 0
        while true {
            switch state {
            case .size:
                guard let lf = bytes[cursor...].prefix(Self.maxSizeLine + 2).firstIndex(of: HTTPHeadParser.lf) else {
                    return bytes.count - cursor > Self.maxSizeLine
                        ? .failure(HTTPParseError(400, "chunk size line too long")) : .needMore(consumed: cursor)
                }
                guard lf > cursor, bytes[lf - 1] == HTTPHeadParser.cr else { return .failure(HTTPParseError(400, "chunk size line ends in a bare LF")) }
                let line = bytes[cursor..<(lf - 1)]
                let digits = line.prefix { isHex($0) }
                let rest = line[digits.endIndex...]
                guard !digits.isEmpty, digits.count <= 15, rest.isEmpty || rest.first == UInt8(ascii: ";")
                        || rest.first == HTTPHeadParser.space || rest.first == HTTPHeadParser.tab,
                      !rest.contains(where: { $0 < 0x20 && $0 != HTTPHeadParser.tab }),
                      let size = Int(String(decoding: digits, as: UTF8.self), radix: 16) else {
                    return .failure(HTTPParseError(400, "malformed chunk size"))
                }
                if body.count + size > limits.maxBodyBytes {
                    return .failure(HTTPParseError(413, "chunked body exceeds the \(limits.maxBodyBytes)-byte limit"))
                }
                cursor = lf + 1
                state = size == 0 ? .trailer(bytes: 0) : .data(remaining: size)
            case let .data(remaining):
                let take = min(remaining, bytes.count - cursor)
                body.append(contentsOf: bytes[cursor..<(cursor + take)])
                cursor += take
                if take < remaining {
                    state = .data(remaining: remaining - take)
                    return .needMore(consumed: cursor)
                }
                state = .dataEnd
            case .dataEnd:
                guard bytes.count - cursor >= 2 else { return .needMore(consumed: cursor) }
                guard bytes[cursor] == HTTPHeadParser.cr, bytes[cursor + 1] == HTTPHeadParser.lf else {
                    return .failure(HTTPParseError(400, "chunk data not followed by CRLF"))
                }
                cursor += 2
                state = .size
            case let .trailer(seen):
                guard let lf = bytes[cursor...].firstIndex(of: HTTPHeadParser.lf) else {
                    return seen + bytes.count - cursor > limits.maxTrailerBytes
                        ? .failure(HTTPParseError(431, "trailer section too large")) : .needMore(consumed: cursor)
                }
                guard lf > cursor, bytes[lf - 1] == HTTPHeadParser.cr else { return .failure(HTTPParseError(400, "trailer line ends in a bare LF")) }
                let length = lf + 1 - cursor
                if seen + length > limits.maxTrailerBytes { return .failure(HTTPParseError(431, "trailer section too large")) }
                if length == 2 { return .done(consumed: lf + 1) }
                if bytes[cursor] == HTTPHeadParser.space || bytes[cursor] == HTTPHeadParser.tab {
                    return .failure(HTTPParseError(400, "obsolete line folding in a trailer"))
                }
                cursor = lf + 1
                state = .trailer(bytes: seen + length)
            }
        }
    }

    private func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
