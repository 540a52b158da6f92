/// The simulated kernel's objects. Mutated only under `SimulatedKernel`'s lock.

/// A type1 container.
final class SimContainer {
    let id: Int
    var groups: Set<Int> = []
    var iommuType: Int32?
    var mappings: [SimMapping] = []
    var pasids: Set<UInt32> = []
    init(id: Int) { self.id = id }
}

/// A DMA mapping (container or IOAS).
struct SimMapping: Equatable {
    var iova: UInt64
    var size: UInt64
    var vaddr: UInt64
    var last: UInt64 { iova + size - 1 }
    func overlaps(_ iova: UInt64, _ size: UInt64) -> Bool { self.iova <= iova + size - 1 && iova <= last }
    /// Not page aligned (an IOAS without a domain takes such mappings).
    var isUnaligned: Bool { (iova | size | vaddr) & 0xfff != 0 }
}

/// A group's kernel-side state.
final class SimGroup {
    let number: Int
    var isOpen = false
    var container: SimContainer?
    var openDevices = 0
    /// The group fd was closed while device fds were open: released when the last one closes.
    var releasePending = false
    init(number: Int) { self.number = number }
}

/// A device's kernel-side state.
final class SimDevice {
    var spec: SimulatedHost.Device
    var driver: String?
    var driverOverride: String?
    let config: [UInt8]
    /// Type1 nesting: host PASID → (owning container id, bound table).
    var boundTables: [UInt32: (container: Int, bind: GuestPageTableBind)] = [:]
    /// iommufd: the context and device id it is bound to.
    var iommufdBinding: (context: Int, deviceID: UInt32)?
    /// iommufd: the page table attached to the whole device (RID).
    var attachedTable: UInt32?
    /// iommufd: PASID → stage-1 HWPT.
    var pasidTables: [UInt32: UInt32] = [:]
    init(spec: SimulatedHost.Device) {
        self.spec = spec
        driver = spec.driver
        config = SimulatedHost.configSpace(for: spec)
    }
}

/// One iommufd context.
final class SimIOMMUFD {
    enum Object {
        case ioas(mappings: [SimMapping])
        /// A plain paging HWPT over an IOAS; `automatic` when the kernel made it for an attach to the IOAS.
        case paging(ioas: UInt32, automatic: Bool)
        case nestingParent(ioas: UInt32)
        case stage1(parent: UInt32, pageTable: UInt64, addressWidth: UInt32, flags: UInt64)
    }
    let id: Int
    var nextID: UInt32 = 1
    var objects: [UInt32: Object] = [:]
    var devices: [UInt32: String] = [:]
    init(id: Int) { self.id = id }
    func allocateID() -> UInt32 {
        defer { nextID += 1 }
        return nextID
    }
}

/// What an open file descriptor refers to.
enum SimFile {
    case container(SimContainer)
    case group(Int)
    case groupDevice(group: Int, address: String)
    case cdev(address: String)
    case iommufd(SimIOMMUFD)
    case regular(String)
}
