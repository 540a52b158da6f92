/// Writes what clients read for a VM or a binding (the API's JSON), for the store to keep with
/// each row (`StoredRepresentations`). The store knows the rows; the API knows the contract.
public protocol RepresentationRenderer: Sendable {
    /// `StoredRepresentations.tagSize` bytes naming what this renderer writes: a stored
    /// representation with another tag was written by another build and is not served.
    var tag: [UInt8] { get }

    /// The JSON of a VM as clients read it; nil when it cannot be kept (it would change
    /// without the row changing): reads then always use the columns.
    func vm(_ item: VMViews.Item) throws -> [UInt8]?

    /// The JSON of a binding as clients read it; nil as for `vm`.
    func binding(_ record: BindingRecord) throws -> [UInt8]?
}
