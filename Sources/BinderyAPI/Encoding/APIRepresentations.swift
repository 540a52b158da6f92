import BinderyBuildInfo
import BinderyStore
import Foundation

/// The JSON the API answers for a VM or a binding, as the store keeps it with each row
/// (`StoredRepresentations`): what `VMJSON` and `BindingJSON` write, which `LoopReadsTests`
/// holds equal to the generated types' encoding.
struct APIRepresentations: RepresentationRenderer {
    /// This build's tag: the first bytes of the SHA-256 of `BuildInfo.summary` (version, commit,
    /// build time). Another build may write another JSON, so a new binary serves none of the
    /// representations an old one stored; each is rendered again when first read.
    let tag: [UInt8]

    /// The renderer of this build, or tagged by `identity` (tests: another build).
    init(identity: String = BuildInfo.summary) {
        tag = Array(SHA256.digest(Data(identity.utf8)).prefix(StoredRepresentations.tagSize))
    }

    /// The VM's JSON.
    func vm(_ item: VMViews.Item) throws -> [UInt8] { try VMJSON.bytes(item.record, holder: item.holder) }

    /// The binding's JSON.
    func binding(_ record: BindingRecord) throws -> [UInt8] { try BindingJSON.bytes(record) }
}
