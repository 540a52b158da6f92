import BinderyHTTP
import Foundation

/// The API contract, read from the `openapi.yaml` embedded at build time: each operation's
/// parameters and request body schema. The transport checks every request against it before
/// any handler runs, so every bound the contract states (lengths, ranges, patterns, item and
/// member counts, required and unknown fields) is the server's own rule, whatever the
/// generated decoders check.
final class Contract: Sendable {
    /// One declared parameter.
    struct Parameter: Sendable {
        /// Its name (case-insensitive for headers).
        let name: String
        /// `path`, `query` or `header`.
        let location: String
        /// Whether the request must carry it.
        let isRequired: Bool
        /// What its value must be.
        let schema: JSONSchema
    }

    /// One operation: method, path template, parameters, body.
    struct Operation: Sendable {
        /// The `operationId`.
        let id: String
        /// `GET`, `POST`, ...
        let method: String
        /// The path template, e.g. `/v1/vms/{id}`.
        let path: String
        /// Path, query and header parameters (operation-level over path-level).
        let parameters: [Parameter]
        /// The `application/json` request body schema, if the operation takes one.
        let body: JSONSchema?
        /// Whether the body is required.
        let isBodyRequired: Bool
        /// The media types its success (2xx) responses carry, e.g. `application/json`.
        var successMediaTypes: [String] = []
    }

    /// Every operation, keyed `METHOD path-template`.
    let operations: [String: Operation]

    /// Reads the contract from its JSON form (OpenAPIJSON writes it from openapi.yaml at build time).
    init(json: String) throws {
        guard let document = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw ContractError("openapi.yaml is not a mapping")
        }
        func resolve(_ reference: String) throws -> [String: Any] {
            guard reference.hasPrefix("#/") else { throw ContractError("only local $refs are supported: \(reference)") }
            var node: Any = document
            for part in reference.dropFirst(2).split(separator: "/") {
                let key = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                guard let next = (node as? [String: Any])?[key] else { throw ContractError("$ref \(reference) names nothing") }
                node = next
            }
            guard let mapping = node as? [String: Any] else { throw ContractError("$ref \(reference) is not a mapping") }
            return mapping
        }
        func parameters(_ list: Any?) throws -> [Parameter] {
            try (list as? [Any] ?? []).map { item in
                var node = item as? [String: Any] ?? [:]
                if let reference = node["$ref"] as? String { node = try resolve(reference) }
                guard let name = node["name"] as? String, let location = node["in"] as? String else {
                    throw ContractError("a parameter without name or in")
                }
                return Parameter(name: name, location: location, isRequired: node["required"] as? Bool ?? (location == "path"),
                                 schema: try JSONSchema(node["schema"] as? [String: Any] ?? [:], resolve: resolve))
            }
        }
        var operations: [String: Operation] = [:]
        for (path, item) in document["paths"] as? [String: Any] ?? [:] {
            guard let item = item as? [String: Any] else { continue }
            let shared = try parameters(item["parameters"])
            for method in ["get", "put", "post", "delete", "patch", "head", "options", "trace"] {
                guard let node = item[method] as? [String: Any], let id = node["operationId"] as? String else { continue }
                let own = try parameters(node["parameters"])
                let merged = own + shared.filter { common in !own.contains { $0.name == common.name && $0.location == common.location } }
                var body: JSONSchema?
                var isBodyRequired = false
                if var request = node["requestBody"] as? [String: Any] {
                    if let reference = request["$ref"] as? String { request = try resolve(reference) }
                    isBodyRequired = request["required"] as? Bool ?? false
                    if let json = (request["content"] as? [String: Any])?["application/json"] as? [String: Any],
                       let schema = json["schema"] as? [String: Any] {
                        body = try JSONSchema(schema, resolve: resolve)
                    }
                }
                var successMediaTypes: [String] = []
                for (code, response) in node["responses"] as? [String: Any] ?? [:] where code.hasPrefix("2") {
                    var response = response as? [String: Any] ?? [:]
                    if let reference = response["$ref"] as? String { response = try resolve(reference) }
                    successMediaTypes += (response["content"] as? [String: Any] ?? [:]).keys.sorted()
                }
                operations[method.uppercased() + " " + path] = Operation(
                    id: id, method: method.uppercased(), path: path, parameters: merged, body: body, isBodyRequired: isBodyRequired,
                    successMediaTypes: successMediaTypes)
            }
        }
        self.operations = operations
    }

    /// The contract this binary was built with.
    static func embedded() throws -> Contract {
        try Contract(json: embeddedOpenAPIJSON)
    }

    /// The operation for `method` on the path template `path`.
    func operation(method: String, path: String) -> Operation? { operations[method + " " + path] }
}
