import Foundation
import BinderyHTTP
import BinderyStore

extension Contract.Operation {
    /// Checks a request against this operation: path parameters (a mismatch is 404: no such
    /// resource can exist), then headers, query and body (400 when unreadable, 422 listing every
    /// offending field). Returns the parsed body, integral numbers made integers, if any: the
    /// handler must decode exactly what was checked.
    @discardableResult
    func check(_ request: HTTPRequest, pathParameters: [String: Substring]) throws(APIError) -> JSONValue? {
        var problems: [(pointer: String, detail: String)] = []
        for parameter in parameters where parameter.location == "path" {
            let raw = pathParameters[parameter.name].map(String.init) ?? ""
            let value = raw.utf8.contains(UInt8(ascii: "%")) ? raw.removingPercentEncoding ?? raw : raw
            parameter.schema.check(.string(value), at: "/path/\(parameter.name)", into: &problems)
            if !problems.isEmpty { throw APIError.notFound("no resource at \(request.head.path): \(parameter.name) \(problems[0].detail)") }
        }
        let query = try QueryString(request.head.query ?? "")
        for parameter in parameters {
            let pointer: String
            let values: [String]
            switch parameter.location {
            case "query":
                pointer = "/query/\(parameter.name)"
                values = query.values(of: parameter.name)
            case "header":
                pointer = "/headers/\(parameter.name)"
                values = request.head.headers.filter { $0.name.lowercased() == parameter.name.lowercased() }.map(\.value)
            default:
                continue
            }
            if values.count > 1 { problems.append((pointer, "must be given once")); continue }
            guard let text = values.first else {
                if parameter.isRequired { problems.append((pointer, "is required")) }
                continue
            }
            parameter.schema.check(Self.typed(text, as: parameter.schema), at: pointer, into: &problems)
        }
        var parsed: JSONValue?
        if let body {
            if request.body.isEmpty {
                if isBodyRequired { throw APIError.badRequest("this request needs a JSON body") }
            } else {
                let mediaType = request.head.header("content-type").map(Self.mediaType(of:))
                guard mediaType == "application/json" else { throw APIError.badRequest("the body must be application/json") }
                guard String(validating: request.body, as: UTF8.self) != nil else { throw APIError.badRequest("the body is not valid UTF-8") }
                do {
                    parsed = try JSONParser.parse(request.body).canonical
                } catch {
                    throw APIError.badRequest("the body is not valid JSON: \(error.reason) (at byte \(error.offset))")
                }
                body.check(parsed!, at: "", into: &problems)
            }
        }
        guard problems.isEmpty else {
            var error = APIError(status: 422, type: "validation-failed",
                                 detail: problems.prefix(10).map { "\($0.pointer.isEmpty ? "the body" : $0.pointer) \($0.detail)" }
                                     .joined(separator: "; "))
            error.fields = Array(problems.prefix(100))
            throw error
        }
        return parsed
    }

    /// A Content-Type's media type: the text before any `;`, without the spaces and tabs
    /// around it (HTTP's optional whitespace), lowercased.
    static func mediaType(of value: String) -> String {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let bytes = value.utf8.prefix { $0 != UInt8(ascii: ";") }
        guard let start = bytes.firstIndex(where: { !isSpace($0) }), let end = bytes.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(decoding: bytes[start...end], as: UTF8.self).lowercased()
    }

    /// A query or header text as the JSON value its schema expects, so one checker serves all.
    static func typed(_ text: String, as schema: JSONSchema) -> JSONValue {
        if schema.types.contains("integer") || schema.types.contains("number") {
            var body = Substring(text)
            if body.hasPrefix("-") { body = body.dropFirst() }
            let isNumeral = !body.isEmpty && body.count <= 40 && body.allSatisfy { $0.isASCII && $0.isNumber }
                && (body.count == 1 || body.first != "0")
            return isNumeral ? .number(text) : .string(text)
        }
        if schema.types.contains("boolean") {
            switch text {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: return .string(text)
            }
        }
        return .string(text)
    }
}

/// A URL query (`a=1&b=x%20y`), percent-decoded, `+` read as a space as HTML forms write it.
struct QueryString {
    private let pairs: [(name: String, value: String)]

    init(_ query: String) throws(APIError) {
        var pairs: [(String, String)] = []
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) throws(APIError) -> String {
                guard let decoded = Self.decode(text) else {
                    throw APIError.badRequest("the query has a malformed percent-escape in \(part.prefix(64))")
                }
                return decoded
            }
            pairs.append((try decode(pieces[0]), try decode(pieces.count > 1 ? pieces[1] : "")))
        }
        self.pairs = pairs
    }

    /// `text` with `+` read as a space and `%XX` escapes decoded; nil when an escape is
    /// malformed or the bytes are not UTF-8 (the generated handlers would read such a value as
    /// empty: refused, the check and the handler cannot disagree). Foundation's
    /// `removingPercentEncoding` cost 10 µs of a `?limit=100` list (through CFString), and
    /// refused some bytes that are not UTF-8 while repairing others.
    static func decode(_ text: Substring) -> String? {
        let utf8 = text.utf8
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            index = utf8.index(after: index)
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard index != utf8.endIndex, let high = utf8[index].hexDigitValue else { return nil }
                index = utf8.index(after: index)
                guard index != utf8.endIndex, let low = utf8[index].hexDigitValue else { return nil }
                index = utf8.index(after: index)
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Every value given for `name`.
    func values(of name: String) -> [String] { pairs.filter { $0.name == name }.map(\.value) }
}
