import BinderyHTTP
import Foundation

/// Namespaced identity → role. Keys carry the identity's kind (`uri:spiffe://…`, `dns:host`,
/// `cn:name`), so a certificate's CN can never match a grant written for a URI SAN.
package struct RoleMap: Sendable, Equatable {
    /// The grants, by namespaced identity.
    package var roles: [String: Role]

    /// A map from its grants (keys already namespaced).
    package init(_ roles: [String: Role] = [:]) { self.roles = roles }

    /// The role granted to `peer`, if any.
    package func role(of peer: PeerInfo) -> Role? { roles[peer.namespacedIdentity] }

    /// `key` with its kind prefix. An old unprefixed key that is a URI (`spiffe://…`) reads as
    /// `uri:`; any other unprefixed key is refused, because it could be a CN or a DNS name.
    package static func namespaced(_ key: String) throws -> String {
        for kind in ["uri:", "dns:", "cn:"] where key.hasPrefix(kind) && key.count > kind.count { return key }
        if key.contains("://") { return "uri:" + key }
        throw RoleMapError(path: "", reason: "identity \"\(key)\" must start with uri:, dns: or cn: (which certificate field it is)")
    }

    /// Grants from names: namespaces the keys and checks the role names.
    package static func grants(_ names: [String: String], source: String) throws -> RoleMap {
        var roles: [String: Role] = [:]
        for (identity, name) in names {
            guard let role = Role(rawValue: name) else {
                throw RoleMapError(path: source, reason: "identity \(identity) has unknown role \(name); roles are admin, operator, auditor, reader")
            }
            do {
                roles[try namespaced(identity)] = role
            } catch let error as RoleMapError {
                throw RoleMapError(path: source, reason: error.reason)
            }
        }
        return RoleMap(roles)
    }

    /// Reads a JSON object of identity → role name; a missing file is an empty map.
    package static func load(from path: String) throws -> RoleMap {
        guard FileManager.default.fileExists(atPath: path) else { return RoleMap() }
        return try parse(Data(contentsOf: URL(fileURLWithPath: path)), from: path)
    }

    /// The map in `data`, the contents of the roles file at `path` (named in errors).
    package static func parse(_ data: Data, from path: String) throws -> RoleMap {
        let names: [String: String]
        do {
            names = try JSONDecoder().decode([String: String].self, from: data)
        } catch {
            throw RoleMapError(path: path, reason: "not a JSON object of identity to role name")
        }
        return try grants(names, source: path)
    }

    /// Writes the map as sorted JSON, atomically, readable by its owner only.
    package func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(roles.mapValues(\.rawValue)).write(to: URL(fileURLWithPath: path), options: .atomic)
        chmod(path, 0o600)
    }
}

/// A role map that does not parse.
package struct RoleMapError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    package var description: String { path.isEmpty ? reason : "role map \(path): \(reason)" }
}
