import BinderyStore
import Foundation

/// A binding's JSON written straight from its record, byte for byte what `CompactJSONEncoder`
/// writes for `Representation.binding(record)` (`LoopReadsTests` holds them equal), without
/// building the generated type. Conditions are written field by field (`appendConditions`);
/// VT-d fields, parsed from stored text, are encoded once per distinct text through the
/// generated types and remembered.
/// A record in an error state (lastError, nextRetryAt) or with an unreadable timestamp is
/// written through the generated types instead.
enum BindingJSON {
    /// The record's JSON.
    static func bytes(_ record: BindingRecord) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(768)
        try append(record, to: &out)
        return out
    }

    /// Appends the record's JSON to `out`.
    static func append(_ record: BindingRecord, to out: inout [UInt8]) throws {
        let start = out.count
        if try !appendDirectly(record, to: &out) {
            out.removeSubrange(start...)
            out.append(contentsOf: try CompactJSONEncoder.encode(Representation.binding(record)))
        }
    }

    /// Appends the record's JSON written field by field; false when the generated types must
    /// write it (the caller drops what was appended).
    private static func appendDirectly(_ record: BindingRecord, to out: inout [UInt8]) throws -> Bool {
        guard record.lastErrorErrno == nil, record.nextRetryAt == nil else { return false }
        let spec = record.spec
        out.append(contentsOf: #"{"createdAt":"#.utf8)
        guard JSONBytes.timestamp(record.meta.createdAt, &out) else { return false }
        out.append(contentsOf: #","deleted":"#.utf8); out.append(contentsOf: (record.deletedAt != nil ? "true" : "false").utf8)
        out.append(contentsOf: #","device":"#.utf8); JSONBytes.string(spec.deviceAddress, &out)
        out.append(contentsOf: #","format":"#.utf8); JSONBytes.string(spec.format, &out)
        out.append(contentsOf: #","generation":"#.utf8); JSONBytes.number(record.meta.generation, &out)
        out.append(contentsOf: #","guestPasid":"#.utf8); JSONBytes.number(spec.guestPASID, &out)
        if let requested = spec.requestedHostPASID { out.append(contentsOf: #","hostPasid":"#.utf8); JSONBytes.number(requested, &out) }
        out.append(contentsOf: #","id":"#.utf8); JSONBytes.string(record.id, &out)
        let pageTable = Representation.pageTable(spec)
        out.append(contentsOf: #","pageTable":{"address":"#.utf8); JSONBytes.string(pageTable.address, &out)
        out.append(contentsOf: #","addressWidth":"#.utf8); JSONBytes.number(pageTable.addressWidth.rawValue, &out)
        out.append(contentsOf: #"},"resourceVersion":"#.utf8); JSONBytes.number(record.meta.resourceVersion, &out)
        out.append(contentsOf: #","status":{"conditions":"#.utf8); appendConditions(record.conditions, to: &out)
        if let host = record.hostPASID { out.append(contentsOf: #","hostPasid":"#.utf8); JSONBytes.number(host, &out) }
        out.append(contentsOf: #","observedGeneration":"#.utf8); JSONBytes.number(record.observedGeneration, &out)
        out.append(contentsOf: #","phase":"#.utf8); JSONBytes.string(record.phase.rawValue, &out)
        out.append(contentsOf: #"},"type":"#.utf8); JSONBytes.string(spec.type, &out)
        out.append(contentsOf: #","updatedAt":"#.utf8)
        guard JSONBytes.timestamp(record.meta.updatedAt, &out) else { return false }
        out.append(contentsOf: #","version":"#.utf8); JSONBytes.number(spec.version, &out)
        out.append(contentsOf: #","vm":"#.utf8); JSONBytes.string(spec.vmID, &out)
        out.append(contentsOf: #","vtd":"#.utf8)
        out.append(contentsOf: try vtd.value(for: spec.formatFields) { try CompactJSONEncoder.encode(Representation.vtd($0)) })
        out.append(UInt8(ascii: "}"))
        return true
    }

    /// Appends a conditions array as the generated `Status` writes it: keys sorted, a status
    /// other than True/False as Unknown, an unreadable time as the epoch.
    static func appendConditions(_ conditions: [Condition], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (index, condition) in conditions.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"lastTransitionTime":"#.utf8)
            if !JSONBytes.timestamp(condition.lastTransitionTime, &out) { JSONBytes.string(Timestamp.format(Date(timeIntervalSince1970: 0)), &out) }
            out.append(contentsOf: #","message":"#.utf8); JSONBytes.string(condition.message, &out)
            out.append(contentsOf: #","reason":"#.utf8); JSONBytes.string(condition.reason.rawValue, &out)
            let status = condition.status == "True" || condition.status == "False" ? condition.status : "Unknown"
            out.append(contentsOf: #","status":"#.utf8); JSONBytes.string(status, &out)
            out.append(contentsOf: #","type":"#.utf8); JSONBytes.string(condition.type.rawValue, &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
    }

    /// VT-d fields' JSON, by the stored format-fields text.
    private static let vtd = TextMemo<[UInt8]>(capacity: 1024)
}
