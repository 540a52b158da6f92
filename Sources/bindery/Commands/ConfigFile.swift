import ArgumentParser
import BinderyAPI
import Foundation

/// The JSON config file (`--config`, `BINDERY_CONFIG`; `/etc/bindery/config.json` when packaged).
/// A key it does not know is an error, so a misspelt setting never silently falls back to a default.
struct ConfigFile: Decodable {
    /// `tls`: the server's certificate and key, the CA client certificates chain to, a CRL.
    struct TLS: Decodable {
        var certificate: String?
        var key: String?
        var clientCA: String?
        var crl: String?
    }

    /// `devicePolicy: {allow: [...]}`.
    struct DevicePolicyFile: Decodable {
        var allow: [String]?
    }

    var dataDir: String?
    var listen: [String]?
    var kernel: String?
    var sysfsRoot: String?
    var faults: String?
    var simulatedHost: String?
    var memoryDirectories: [String]?
    var vmmSocket: String?
    var vmmSocketGroup: String?
    var devicePolicy: DevicePolicyFile?
    var tls: TLS?
    var roles: [String: String]?
    var rolesFile: String?
    var logFormat: String?

    /// Every key the file may hold, by object (`roles` maps identities, so any key).
    static let knownKeys: [String: Set<String>] = [
        "": ["dataDir", "listen", "kernel", "sysfsRoot", "faults", "simulatedHost", "memoryDirectories", "vmmSocket",
             "vmmSocketGroup", "devicePolicy", "tls", "roles", "rolesFile", "logFormat"],
        "tls": ["certificate", "key", "clientCA", "crl"],
        "devicePolicy": ["allow"],
    ]

    /// The file at `path`, or an empty one without a path.
    static func load(_ path: String?) throws -> ConfigFile {
        guard let path else { return ConfigFile() }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ValidationError("config file \(path): cannot read it: \(error.localizedDescription)")
        }
        return try parse(data, source: path)
    }

    /// Decodes `data`, refusing unknown keys; `source` names the file in errors.
    static func parse(_ data: Data, source: String) throws -> ConfigFile {
        guard data.count <= 1 << 20 else { throw ValidationError("config file \(source): larger than 1 MiB") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationError("config file \(source): not a JSON object")
        }
        let unknown = unknownKeys(in: object)
        guard unknown.isEmpty else {
            throw ValidationError("config file \(source): unknown key(s) \(unknown.joined(separator: ", ")); "
                                  + "known: \(knownKeys[""]!.sorted().joined(separator: ", "))")
        }
        do {
            return try JSONDecoder().decode(ConfigFile.self, from: data)
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ValidationError("config file \(source): \(key) must be \(Self.describe(type))")
        } catch {
            throw ValidationError("config file \(source): \(error)")
        }
    }

    /// Dotted paths of keys not in `knownKeys`.
    static func unknownKeys(in object: [String: Any]) -> [String] {
        var unknown: [String] = []
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            if !knownKeys[""]!.contains(key) { unknown.append(key); continue }
            if let nested = knownKeys[key], let inner = value as? [String: Any] {
                unknown += inner.keys.sorted().filter { !nested.contains($0) }.map { "\(key).\($0)" }
            }
        }
        return unknown
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is [String].Type: "a list of strings"
        case is [String: String].Type: "an object of strings"
        default: "a \(type)"
        }
    }

    /// The `roles` grants, checked.
    func roleGrants() throws -> RoleMap {
        do {
            return try RoleMap.grants(roles ?? [:], source: "config file")
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
