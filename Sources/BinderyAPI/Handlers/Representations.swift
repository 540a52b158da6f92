import BinderyStore
import Foundation

/// Store records as API schemas.
enum Representation {
    static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    static func status(phase: Phase, observedGeneration: Int, conditions: [Condition], hostPASID: Int? = nil,
                       lastError: (String, String)? = nil, nextRetryAt: String? = nil) -> Components.Schemas.Status {
        Components.Schemas.Status(
            phase: phase.rawValue, observedGeneration: Int64(observedGeneration),
            conditions: conditions.map { condition in
                Components.Schemas.Condition(_type: condition.type.rawValue, status: .init(rawValue: condition.status) ?? .Unknown,
                                             reason: condition.reason.rawValue, message: condition.message,
                                             lastTransitionTime: Timestamp.parse(condition.lastTransitionTime) ?? Date(timeIntervalSince1970: 0))
            },
            hostPasid: hostPASID.map(Int64.init),
            lastError: lastError.map { .init(errno: $0.0, call: $0.1) },
            nextRetryAt: nextRetryAt.flatMap(Timestamp.parse))
    }

    static func vm(_ record: VMRecord, holder: AttachmentRepository.Holder? = nil) -> Components.Schemas.VM {
        Components.Schemas.VM(
            id: record.id, name: record.spec.name, labels: .init(additionalProperties: record.spec.labels),
            memory: record.spec.memory.map { region in
                Components.Schemas.MemoryRegion(
                    guestAddress: hex(region.guestAddress), size: Int64(region.size),
                    backing: region.backingPath.map { .init(path: $0, offset: Int64(region.backingOffset)) })
            },
            generation: Int64(record.meta.generation), resourceVersion: Int64(record.meta.resourceVersion),
            createdAt: Timestamp.parse(record.meta.createdAt) ?? Date(), updatedAt: Timestamp.parse(record.meta.updatedAt) ?? Date(),
            status: status(phase: record.phase, observedGeneration: record.observedGeneration, conditions: record.conditions),
            vmm: holder.map { .init(pid: Int64($0.pid), uid: Int64($0.uid), since: Timestamp.parse($0.since) ?? Date(), issuer: $0.issuer) })
    }

    static func device(_ record: DeviceRecord) -> Components.Schemas.Device {
        let s = record.snapshot
        func hex4(_ value: Int, _ digits: Int) -> String {
            let raw = String(value, radix: 16)
            return "0x" + String(repeating: "0", count: max(0, digits - raw.count)) + raw
        }
        return Components.Schemas.Device(
            address: s.address, assignable: s.refusalRule == nil,
            notAssignable: s.refusalRule.flatMap { rule in
                Components.Schemas.Device.notAssignablePayload.rulePayload(rawValue: rule).map { .init(rule: $0, reason: s.refusalReason ?? rule) }
            },
            vendorId: hex4(s.vendorID, 4), deviceId: hex4(s.deviceID, 4), classCode: hex4(s.classCode, 6),
            iommuGroup: s.iommuGroup, driver: s.driver, numaNode: s.numaNode, present: record.isPresent,
            pasid: .init(supported: s.pasidSupported, width: s.pasidWidth), ats: s.atsSupported, pri: s.priSupported,
            vm: record.vmID, managed: record.isManaged,
            generation: Int64(record.meta.generation),
            resourceVersion: Int64(record.meta.resourceVersion),
            status: status(phase: record.phase, observedGeneration: record.observedGeneration, conditions: record.conditions))
    }

    /// The VT-d fields of a stored format-fields object (few distinct texts exist: one per
    /// combination clients use, so parsed ones are remembered).
    static func vtd(_ formatFields: String) -> Components.Schemas.VTDFields {
        parsedVTD.value(for: formatFields) { text in
            let fields = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
            return Components.Schemas.VTDFields(
                sre: fields["sre"] as? Bool, eafe: fields["eafe"] as? Bool, pcd: fields["pcd"] as? Bool, pwt: fields["pwt"] as? Bool,
                emte: fields["emte"] as? Bool, cd: fields["cd"] as? Bool, pat: (fields["pat"] as? Int).map(Int64.init),
                emt: (fields["emt"] as? Int).map(Int64.init))
        }
    }

    /// Parsed VT-d fields, by the stored text.
    private static let parsedVTD = TextMemo<Components.Schemas.VTDFields>(capacity: 1024)

    /// The page table of a binding's spec.
    static func pageTable(_ spec: BindingSpec) -> Components.Schemas.PageTable {
        // Stored widths passed the same enum when they were accepted.
        .init(address: hex(spec.pageTableAddress), addressWidth: .init(rawValue: spec.addressWidth) ?? ._57)
    }

    static func binding(_ record: BindingRecord) -> Components.Schemas.Binding {
        let vtd = vtd(record.spec.formatFields)
        return Components.Schemas.Binding(
            id: record.id, vm: record.spec.vmID, device: record.spec.deviceAddress, _type: record.spec.type,
            guestPasid: Int64(record.spec.guestPASID), hostPasid: record.spec.requestedHostPASID.map(Int64.init),
            format: record.spec.format, version: Int64(record.spec.version),
            pageTable: pageTable(record.spec),
            vtd: vtd, generation: Int64(record.meta.generation), resourceVersion: Int64(record.meta.resourceVersion),
            createdAt: Timestamp.parse(record.meta.createdAt) ?? Date(), updatedAt: Timestamp.parse(record.meta.updatedAt) ?? Date(),
            deleted: record.deletedAt != nil,
            status: status(phase: record.phase, observedGeneration: record.observedGeneration, conditions: record.conditions,
                           hostPASID: record.hostPASID,
                           lastError: record.lastErrorErrno.map { ($0, record.lastErrorCall ?? "") }, nextRetryAt: record.nextRetryAt))
    }
}
