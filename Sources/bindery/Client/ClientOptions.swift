import ArgumentParser
import BinderyHTTP
import Foundation

/// How client subcommands reach a server. The defaults are `make serve`'s: the admin
/// certificate of the development PKI in ./bindery-data.
struct ClientOptions: ParsableArguments {
    @Option(help: "Server URL (default https://localhost:8443). Env: BINDERY_SERVER.") var server: String?
    @Option(help: "CA bundle that signed the server (default ./bindery-data/pki/ca.pem). Env: BINDERY_CA.") var ca: String?
    @Option(help: "Client certificate (default ./bindery-data/pki/admin.pem). Env: BINDERY_CERT.") var cert: String?
    @Option(help: "Client key (default ./bindery-data/pki/admin-key.pem). Env: BINDERY_KEY.") var key: String?
    @Flag(help: "Print the server's JSON instead of a table.") var json = false

    /// Calls the API; returns the decoded JSON, or throws with the problem's detail.
    func call(_ method: String, _ path: String, body: [String: Any]? = nil) throws -> Any {
        let environment = ProcessInfo.processInfo.environment
        guard let url = URL(string: server ?? environment["BINDERY_SERVER"] ?? "https://localhost:8443") else {
            throw ValidationError("--server must be a URL such as https://localhost:8443")
        }
        let client = HTTPSClient(server: url, caPath: ca ?? environment["BINDERY_CA"] ?? "./bindery-data/pki/ca.pem",
                                 certificatePath: cert ?? environment["BINDERY_CERT"] ?? "./bindery-data/pki/admin.pem",
                                 keyPath: key ?? environment["BINDERY_KEY"] ?? "./bindery-data/pki/admin-key.pem")
        let payload = try body.map { Array(try JSONSerialization.data(withJSONObject: $0)) }
        let response: HTTPSClient.Response
        do {
            response = try client.send(method, path, json: payload)
        } catch {
            throw CommandFailure("\(method) \(path): \(error)")
        }
        let decoded = response.body.isEmpty ? [:] : try JSONSerialization.jsonObject(with: Data(response.body))
        guard (200..<300).contains(response.status) else {
            let problem = decoded as? [String: Any]
            throw CommandFailure("\(method) \(path): \(response.status) \(problem?["detail"] as? String ?? "")")
        }
        return decoded
    }

    /// Prints `value` as JSON, or `rows` as a table.
    func show(_ value: Any, table columns: [String], rows: [[String]]) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let widths = columns.indices.map { index in ([columns[index]] + rows.map { $0[index] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        print(line(columns.map { $0.uppercased() }))
        rows.forEach { print(line($0)) }
    }
}

/// A field of a JSON object as text for a table cell.
func cell(_ object: Any?, _ path: String...) -> String {
    var current = object
    for key in path { current = (current as? [String: Any])?[key] }
    switch current {
    case let text as String: return text
    case let number as NSNumber:
        // JSONSerialization gives booleans as __NSCFBoolean, numbers as NSNumber; both cast to Bool.
        if String(describing: type(of: number)).contains("Boolean") { return number.boolValue ? "yes" : "no" }
        return number.stringValue
    case nil: return "-"
    default: return "\(current!)"
    }
}

func items(_ page: Any) -> [[String: Any]] { (page as? [String: Any])?["items"] as? [[String: Any]] ?? [] }
