import Foundation

/// Identity → role, from `<data-dir>/roles.json` (written by `bindery pki issue-client`)
/// merged with the config file's map (which wins).
package struct RoleMap: Sendable, Equatable {
    /// The grants.
    package var roles: [String: Role]

    /// A map from its grants.
    package init(_ roles: [String: Role] = [:]) { self.roles = roles }

    /// The role of `identity`, if any.
    package func role(of identity: String) -> Role? { roles[identity] }

    /// Reads a JSON object of identity → role name; a missing file is an empty map.
    package static func load(from path: String) throws -> RoleMap {
        guard FileManager.default.fileExists(atPath: path) else { return RoleMap() }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let names = try JSONDecoder().decode([String: String].self, from: data)
        var roles: [String: Role] = [:]
        for (identity, name) in names {
            guard let role = Role(rawValue: name) else {
                throw RoleMapError(path: path, reason: "identity \(identity) has unknown role \(name); roles are admin, operator, auditor, reader")
            }
            roles[identity] = role
        }
        return RoleMap(roles)
    }

    /// Writes the map as sorted JSON, atomically.
    package func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(roles.mapValues(\.rawValue)).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// A role map file that does not parse.
package struct RoleMapError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    package var description: String { "role map \(path): \(reason)" }
}
