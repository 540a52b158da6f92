/// A comparable picture of everything the simulated kernel holds, for tests that check a
/// failed flow left the kernel exactly as it found it and that nothing leaks.
extension SimulatedKernel {
    /// Everything the kernel holds, without file descriptor numbers or id counters (a rollback
    /// may reopen a device on another fd): equal snapshots mean the same objects in the same state.
    public struct Snapshot: Equatable, Sendable {
        /// A type1 container.
        public struct Container: Equatable, Sendable {
            /// Groups in it.
            public var groups: [Int]
            /// `VFIO_SET_IOMMU` type, if set.
            public var iommuType: Int32?
            /// DMA mappings as "iova+size@vaddr", sorted.
            public var mappings: [String]
            /// Host PASIDs it allocated.
            public var pasids: [UInt32]
        }

        /// A group's kernel state.
        public struct Group: Equatable, Sendable {
            /// A group fd is open.
            public var isOpen: Bool
            /// Device fds open through it.
            public var openDevices: Int
            /// In a container.
            public var inContainer: Bool
        }

        /// A device's kernel state.
        public struct Device: Equatable, Sendable {
            /// Bound driver.
            public var driver: String?
            /// `driver_override`.
            public var driverOverride: String?
            /// Type1 nesting bindings: host PASID → table.
            public var boundTables: [UInt32: GuestPageTableBind]
            /// iommufd device id, when bound to an iommufd.
            public var iommufdDeviceID: UInt32?
            /// iommufd: the table attached to the whole device.
            public var attachedTable: UInt32?
            /// iommufd: PASID → stage-1 HWPT.
            public var pasidTables: [UInt32: UInt32]
        }

        /// What each open fd refers to ("container", "group 10", "device 0000:3b:00.0", ...), sorted.
        public var openFiles: [String]
        /// Open containers, in the order of `openFiles`.
        public var containers: [Container]
        /// Groups by number.
        public var groups: [Int: Group]
        /// Devices by address.
        public var devices: [String: Device]
        /// iommufd contexts: each one's objects ("3 ioas [0+40000000]", ...) and bound devices, sorted.
        public var iommufds: [[String]]
        /// Host PASIDs allocated through the nesting ABI.
        public var allocatedPASIDs: [UInt32]
        /// Process memory mmapped and not yet unmapped: address → length.
        public var processMemory: [UInt64: Int]

        /// True when nothing is held: no fd, no PASID, no process memory, no binding or attachment.
        public var holdsNothing: Bool {
            openFiles.isEmpty && allocatedPASIDs.isEmpty && processMemory.isEmpty
                && devices.values.allSatisfy { $0.boundTables.isEmpty && $0.iommufdDeviceID == nil && $0.pasidTables.isEmpty }
                && groups.values.allSatisfy { !$0.isOpen && $0.openDevices == 0 && !$0.inContainer }
        }
    }

    /// The kernel's state now.
    public func snapshot() -> Snapshot {
        lock.withLock {
            let open = files.values.map { file -> (String, SimContainer?) in
                switch file {
                case let .container(container): return ("container", container)
                case let .group(number): return ("group \(number)", nil)
                case let .groupDevice(number, address): return ("device \(address) via group \(number)", nil)
                case let .cdev(address): return ("cdev \(address)", nil)
                case .iommufd: return ("iommufd", nil)
                case let .regular(path): return ("file \(path)", nil)
                }
            }
            let containers = open.compactMap(\.1).map { container in
                Snapshot.Container(groups: container.groups.sorted(), iommuType: container.iommuType,
                                   mappings: container.mappings.map(Self.describe).sorted(), pasids: container.pasids.sorted())
            }.sorted { "\($0)" < "\($1)" }
            let iommufds = files.values.compactMap { file -> [String]? in
                guard case let .iommufd(context) = file else { return nil }
                return context.objects.map { "\($0.key) \(Self.describe($0.value))" }.sorted()
                    + context.devices.map { "device \($0.key) \($0.value)" }.sorted()
            }.sorted { "\($0)" < "\($1)" }
            return Snapshot(
                openFiles: open.map(\.0).sorted(),
                containers: containers,
                groups: groups.mapValues {
                    Snapshot.Group(isOpen: $0.isOpen, openDevices: $0.openDevices, inContainer: $0.container != nil)
                },
                devices: devices.mapValues { device in
                    Snapshot.Device(driver: device.driver, driverOverride: device.driverOverride,
                                    boundTables: device.boundTables.mapValues(\.bind), iommufdDeviceID: device.iommufdBinding?.deviceID,
                                    attachedTable: device.attachedTable, pasidTables: device.pasidTables)
                },
                iommufds: iommufds,
                allocatedPASIDs: allocatedPASIDs.keys.sorted(),
                processMemory: processMemory)
        }
    }

    private static func describe(_ mapping: SimMapping) -> String {
        "0x\(String(mapping.iova, radix: 16))+0x\(String(mapping.size, radix: 16))@0x\(String(mapping.vaddr, radix: 16))"
    }

    private static func describe(_ object: SimIOMMUFD.Object) -> String {
        switch object {
        case let .ioas(mappings): return "ioas \(mappings.map(describe).sorted())"
        case let .paging(ioas, automatic): return "\(automatic ? "automatic " : "")paging over \(ioas)"
        case let .nestingParent(ioas): return "nesting parent of \(ioas)"
        case let .stage1(parent, pageTable, width, flags):
            return "stage-1 on \(parent) table 0x\(String(pageTable, radix: 16)) width \(width) flags \(flags)"
        }
    }
}
