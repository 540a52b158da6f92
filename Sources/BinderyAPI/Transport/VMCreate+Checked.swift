extension Components.Schemas.VMCreate {
    /// The create read member by member from a document the contract's checks passed, as the
    /// generated `init(from:)` reads it with `JSONDecoder`: `name` a string; `labels` absent,
    /// null or an object of strings; `memory` absent, null or an array of regions; no other
    /// member. Nil for anything else, which the generated path then answers. A POST /v1/vms
    /// is the busiest write; read this way it costs a tenth of the generic decoder
    /// (`JSONValueDecoderTests` holds both equal to `JSONDecoder`).
    init?(checked document: JSONValue) {
        guard case let .object(members) = document else { return nil }
        var name: String?, labels: labelsPayload?, memory: [Components.Schemas.MemoryRegion]?
        for (key, value) in members {
            switch (key, value) {
            case let ("name", .string(text)): name = text
            case ("labels", .null), ("memory", .null): continue
            case let ("labels", .object(entries)):
                var map: [String: String] = [:]
                map.reserveCapacity(entries.count)
                for (label, entry) in entries {
                    guard case let .string(text) = entry else { return nil }
                    map[label] = text
                }
                labels = .init(additionalProperties: map)
            case let ("memory", .array(elements)):
                var regions: [Components.Schemas.MemoryRegion] = []
                regions.reserveCapacity(elements.count)
                for element in elements {
                    guard let region = Components.Schemas.MemoryRegion(checked: element) else { return nil }
                    regions.append(region)
                }
                memory = regions
            default: return nil
            }
        }
        guard let name else { return nil }
        self.init(name: name, labels: labels, memory: memory)
    }
}

extension Components.Schemas.MemoryRegion {
    /// A region as its generated `init(from:)` reads it: `guestAddress` a string, `size` an
    /// Int64, `backing` absent, null or `{path, offset?}`; no other member.
    init?(checked document: JSONValue) {
        guard case let .object(members) = document else { return nil }
        var guestAddress: String?, size: Int64?, backing: backingPayload?
        for (key, value) in members {
            switch (key, value) {
            case let ("guestAddress", .string(text)): guestAddress = text
            case let ("size", .number(text)):
                guard let integer = JSONNumber.int64(text) else { return nil }
                size = integer
            case ("backing", .null): continue
            case let ("backing", .object(fields)):
                var path: String?, offset: Int64?
                for (field, entry) in fields {
                    switch (field, entry) {
                    case let ("path", .string(text)): path = text
                    case ("offset", .null): continue
                    case let ("offset", .number(text)):
                        guard let integer = JSONNumber.int64(text) else { return nil }
                        offset = integer
                    default: return nil
                    }
                }
                guard let path else { return nil }
                backing = .init(path: path, offset: offset)
            default: return nil
            }
        }
        guard let guestAddress, let size else { return nil }
        self.init(guestAddress: guestAddress, size: size, backing: backing)
    }
}
