import Foundation

/// What the VMM socket sends with a VM's descriptors: which descriptor is what, in the order
/// they arrive (the same order `bindery vmm attach` numbers them from 3, like `LISTEN_FDS`).
public struct HandOffManifest: Codable, Sendable, Equatable {
    /// The manifest's format version.
    public var version = 1
    /// The VM.
    public var vm: String
    /// `vfio-type1` or `iommufd`.
    public var path: String
    /// The descriptors, in order.
    public var descriptors: [Entry]
    /// The iommufd objects the devices are attached through (iommufd path).
    public var iommufd: IOMMUFDObjects?
    /// Guest memory, DMA-mapped at its guest addresses.
    public var memory: [Memory]

    /// One descriptor.
    public struct Entry: Codable, Sendable, Equatable {
        /// Its name (`vfio-container`, `iommufd`, `vfio-device.0000-3b-00.0`, `vfio-cdev.0000-3b-00.0`, `guest-memory.0`).
        public var name: String
        /// `vfio-container`, `vfio-device`, `iommufd`, `vfio-cdev` or `guest-memory`.
        public var kind: String
        /// The PCI address, for devices.
        public var device: String?
        /// The IOMMU group, for type1 devices.
        public var group: Int?
        /// Region count from `VFIO_DEVICE_GET_INFO`.
        public var regions: UInt32?
        /// Interrupt type count from `VFIO_DEVICE_GET_INFO`.
        public var interrupts: UInt32?
        /// The device's id in the iommufd.
        public var iommufdDeviceId: UInt32?
        /// For `guest-memory`: the region's place in `memory`.
        public var memoryRegion: Int?
    }

    /// iommufd object ids.
    public struct IOMMUFDObjects: Codable, Sendable, Equatable {
        /// The IOAS holding guest memory.
        public var ioas: UInt32
        /// The HWPT the devices are attached to.
        public var hwpt: UInt32
    }

    /// A guest memory region.
    public struct Memory: Codable, Sendable, Equatable {
        /// Guest physical address, hex.
        public var guestAddress: String
        /// Bytes.
        public var size: UInt64
        /// The file backing it, when shared.
        public var backing: Backing?
    }

    /// A backing file and the offset of the region in it.
    public struct Backing: Codable, Sendable, Equatable {
        /// Absolute path.
        public var path: String
        /// Offset in bytes.
        public var offset: UInt64
    }

    /// `LISTEN_FDNAMES`: the names joined by `:`.
    public var listenFDNames: String { descriptors.map(\.name).joined(separator: ":") }
}

/// What a VMM sends first: the VM and the one-time token for it.
public struct AttachRequest: Codable, Sendable, Equatable {
    /// The VM.
    public var vm: String
    /// The token from `POST /v1/vms/{id}/attachments`.
    public var token: String

    /// A request from its parts.
    public init(vm: String, token: String) {
        self.vm = vm
        self.token = token
    }
}

/// What the socket answers instead of a manifest when it refuses.
public struct AttachRefusal: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    /// Why.
    public var error: String
    /// Why.
    public var description: String { error }
}
