import BinderyBuildInfo
import BinderyStore
import Foundation

/// The JSON the API answers for a VM or a binding, as the store keeps it with each row
/// (`StoredRepresentations`): what `VMJSON` and `BindingJSON` write, which `LoopReadsTests`
/// holds equal to the generated types' encoding.
struct APIRepresentations: RepresentationRenderer {
    /// This build's tag: the first bytes of the SHA-256 of `BuildInfo.summary` and the
    /// executable's build id (which changes with every link of different code, where the
    /// summary's commit and time may not). Another build may write another JSON, so a new
    /// binary serves none of the representations an old one stored: each is rendered again
    /// when first read.
    let tag: [UInt8]

    /// The renderer of this build, or tagged by `identity` (tests: another build). An
    /// executable without a build id gets a tag of its own process: nothing stored before is
    /// served, as it might come from other code of the same summary.
    init(identity: String = "\(BuildInfo.summary) \(BuildInfo.executableBuildID.map { Data($0).hexString } ?? "no build id, process \(UUID().uuidString)")") {
        tag = Array(SHA256.digest(Data(identity.utf8)).prefix(StoredRepresentations.tagSize))
    }

    /// The VM's JSON; nil when a time in it does not parse (the generated types then write the
    /// time of the read, which a stored copy would not).
    func vm(_ item: VMViews.Item) throws -> [UInt8]? {
        let meta = item.record.meta
        guard Self.parse(meta.createdAt, meta.updatedAt, item.holder?.since ?? meta.createdAt) else { return nil }
        return try VMJSON.bytes(item.record, holder: item.holder)
    }

    /// The binding's JSON; nil when a time in it does not parse (as for a VM).
    func binding(_ record: BindingRecord) throws -> [UInt8]? {
        guard Self.parse(record.meta.createdAt, record.meta.updatedAt) else { return nil }
        return try BindingJSON.bytes(record)
    }

    /// Whether every one of `times` parses (`Representation` writes `Date()` for one that does not).
    private static func parse(_ times: String...) -> Bool { times.allSatisfy { Timestamp.parse($0) != nil } }
}
