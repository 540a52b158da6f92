import BinderyStore

/// What the read operations answer, from one transaction. The generated handlers run these on
/// the reader pool; `LoopReads` runs the same ones on an event loop's own connection.
enum ReadViews {
    /// The binding as clients see it, with its ETag; nil when it does not exist or is being deleted
    /// (a deleted binding is gone for clients at once; its unbinding shows in the change feed).
    static func binding(_ id: String, in db: StoreTransaction) throws -> (body: Components.Schemas.Binding, etag: String)? {
        guard let record = try bindingRecord(id, in: db) else { return nil }
        return (Representation.binding(record), etag(record.meta.resourceVersion))
    }

    /// The stored binding clients may see (not deleted, deletion not asked for).
    static func bindingRecord(_ id: String, in db: StoreTransaction) throws -> BindingRecord? {
        guard let record = try BindingRepository.fetch(id, in: db), record.deletionRequestedAt == nil else { return nil }
        return record
    }

    /// A page of bindings after the cursor `after`, optionally for one VM or device.
    static func bindingPage(vm: String?, device: String?, after: String?, limit: Int, in db: StoreTransaction) throws
        -> Components.Schemas.BindingList {
        let (page, next) = try bindingRecords(vm: vm, device: device, after: after, limit: limit, in: db)
        return .init(items: page.map(Representation.binding), nextCursor: next)
    }

    /// The records of a page of bindings, and the cursor to the next page if there is one.
    static func bindingRecords(vm: String?, device: String?, after: String?, limit: Int, in db: StoreTransaction) throws
        -> (page: ArraySlice<BindingRecord>, next: String?) {
        let records = try BindingRepository.page(vmID: vm, deviceAddress: device, after: after, limit: limit + 1, in: db)
        let page = records.prefix(limit)
        return (page, records.count > limit ? page.last?.id : nil)
    }

    /// The VM with the VMM holding it, and its ETag; nil when it does not exist or is being deleted.
    static func vm(_ id: String, in db: StoreTransaction) throws -> (body: Components.Schemas.VM, etag: String)? {
        guard let (record, holder) = try vmRecord(id, in: db) else { return nil }
        return (Representation.vm(record, holder: holder), etag(record.meta.resourceVersion))
    }

    /// The stored VM clients may see (deletion not asked for) and the VMM holding it: one statement.
    static func vmRecord(_ id: String, in db: StoreTransaction) throws -> (VMRecord, AttachmentRepository.Holder?)? {
        try VMViews.visible(id, in: db)
    }

    /// A page of VMs after the cursor `after`.
    static func vmPage(after: String?, limit: Int, in db: StoreTransaction) throws -> Components.Schemas.VMList {
        let (page, next) = try vmRecords(after: after, limit: limit, in: db)
        return .init(items: page.map { Representation.vm($0.record, holder: $0.holder) }, nextCursor: next)
    }

    /// The records of a page of VMs with the VMM holding each, and the cursor to the next page
    /// if there is one.
    static func vmRecords(after: String?, limit: Int, in db: StoreTransaction) throws -> (page: ArraySlice<VMViews.Item>, next: String?) {
        let items = try VMViews.page(after: after, limit: limit + 1, in: db)
        let page = items.prefix(limit)
        return (page, items.count > limit ? page.last?.record.id : nil)
    }
}
