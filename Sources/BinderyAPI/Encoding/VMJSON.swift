import BinderyStore
import Foundation

/// A VM's JSON written straight from its record and holder, byte for byte what
/// `CompactJSONEncoder` writes for `Representation.vm(record, holder:)` (`LoopReadsTests` holds
/// them equal), without building the generated type. Conditions are written by
/// `BindingJSON.appendConditions`. A record with an unreadable timestamp is left to the
/// generated types.
enum VMJSON {
    /// The VM's JSON.
    static func bytes(_ record: VMRecord, holder: AttachmentRepository.Holder?) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        try append(record, holder: holder, to: &out)
        return out
    }

    /// Appends the VM's JSON to `out`.
    static func append(_ record: VMRecord, holder: AttachmentRepository.Holder?, to out: inout [UInt8]) throws {
        let start = out.count
        if !appendDirectly(record, holder: holder, to: &out) {
            out.removeSubrange(start...)
            out.append(contentsOf: try CompactJSONEncoder.encode(Representation.vm(record, holder: holder)))
        }
    }

    /// Appends the VM's JSON written field by field; false when the generated types must write
    /// it (the caller drops what was appended).
    private static func appendDirectly(_ record: VMRecord, holder: AttachmentRepository.Holder?, to out: inout [UInt8]) -> Bool {
        let spec = record.spec
        out.append(contentsOf: #"{"createdAt":"#.utf8)
        guard JSONBytes.timestamp(record.meta.createdAt, &out) else { return false }
        out.append(contentsOf: #","generation":"#.utf8); JSONBytes.number(record.meta.generation, &out)
        out.append(contentsOf: #","id":"#.utf8); JSONBytes.string(record.id, &out)
        out.append(contentsOf: #","labels":{"#.utf8)
        for (index, key) in spec.labels.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONBytes.string(key, &out)
            out.append(UInt8(ascii: ":"))
            JSONBytes.string(spec.labels[key]!, &out)
        }
        out.append(contentsOf: #"},"memory":["#.utf8)
        for (index, region) in spec.memory.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "{"))
            if let path = region.backingPath {
                out.append(contentsOf: #""backing":{"offset":"#.utf8); JSONBytes.number(Int64(region.backingOffset), &out)
                out.append(contentsOf: #","path":"#.utf8); JSONBytes.string(path, &out)
                out.append(contentsOf: "},".utf8)
            }
            out.append(contentsOf: #""guestAddress":"#.utf8); JSONBytes.hex(region.guestAddress, &out)
            out.append(contentsOf: #","size":"#.utf8); JSONBytes.number(Int64(region.size), &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"],"name":"#.utf8); JSONBytes.string(spec.name, &out)
        out.append(contentsOf: #","resourceVersion":"#.utf8); JSONBytes.number(record.meta.resourceVersion, &out)
        out.append(contentsOf: #","status":{"conditions":"#.utf8); BindingJSON.appendConditions(record.conditions, to: &out)
        out.append(contentsOf: #","observedGeneration":"#.utf8); JSONBytes.number(record.observedGeneration, &out)
        out.append(contentsOf: #","phase":"#.utf8); JSONBytes.string(record.phase.rawValue, &out)
        out.append(contentsOf: #"},"updatedAt":"#.utf8)
        guard JSONBytes.timestamp(record.meta.updatedAt, &out) else { return false }
        if let holder {
            out.append(contentsOf: #","vmm":{"issuer":"#.utf8); JSONBytes.string(holder.issuer, &out)
            out.append(contentsOf: #","pid":"#.utf8); JSONBytes.number(Int64(holder.pid), &out)
            out.append(contentsOf: #","since":"#.utf8)
            guard JSONBytes.timestamp(holder.since, &out) else { return false }
            out.append(contentsOf: #","uid":"#.utf8); JSONBytes.number(Int64(holder.uid), &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        return true
    }
}
