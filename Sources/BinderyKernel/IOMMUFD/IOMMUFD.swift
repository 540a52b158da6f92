import CBinderyKernel
import Glibc

/// An iommufd context (`/dev/iommu`): IOAS for guest memory, a nesting-parent HWPT, and one
/// VT-d stage-1 HWPT per guest PASID, attached to VFIO device cdevs. iommufd allocates no
/// PASIDs: the caller picks them.
public final class IOMMUFD: @unchecked Sendable {
    /// The boundary every call goes through.
    public let syscalls: any Syscalls
    /// The iommufd file descriptor (-1 once closed).
    public private(set) var fd: Int32

    /// The path of the iommufd device.
    public static let path = "/dev/iommu"

    /// What `IOMMU_GET_HW_INFO` reports for a device.
    public struct HardwareInfo: Sendable, Equatable {
        /// `IOMMU_HW_INFO_TYPE_*` (1: Intel VT-d).
        public var dataType: UInt32
        /// PASID width the device may use (0: no PASID).
        public var maxPASIDLog2: UInt8
        /// `IOMMU_HW_CAP_*`.
        public var capabilities: UInt64
        /// VT-d capability register.
        public var capabilityRegister: UInt64
        /// VT-d extended capability register.
        public var extendedCapabilityRegister: UInt64
    }

    /// Opens `/dev/iommu`.
    public init(syscalls: any Syscalls) throws(KernelError) {
        self.syscalls = syscalls
        fd = try syscalls.openOrThrow(Self.path, flags: O_RDWR)
    }

    /// Adopts an iommufd a previous process kept (checked by the caller, through the objects it holds).
    public init(adopting fd: Int32, syscalls: any Syscalls) {
        self.syscalls = syscalls
        self.fd = fd
    }

    deinit { close() }

    /// Closes the context; the kernel destroys every object in it.
    public func close() {
        if fd >= 0 { _ = syscalls.close(fd) }
        fd = -1
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD`: binds a device cdev to this context; returns its device id.
    public func bind(_ device: VFIODevice) throws(KernelError) -> UInt32 {
        var bind = vfio_device_bind_iommufd()
        bind.argsz = UInt32(MemoryLayout<vfio_device_bind_iommufd>.size)
        bind.iommufd = fd
        try syscalls.call(device.fd, .deviceBindIOMMUFD, &bind, on: "device \(device.address)")
        return bind.out_devid
    }

    /// `IOMMU_GET_HW_INFO` for a bound device.
    public func hardwareInfo(deviceID: UInt32) throws(KernelError) -> HardwareInfo {
        var vtd = iommu_hw_info_vtd()
        return try withUnsafeMutableBytes(of: &vtd) { (vtdBytes) throws(KernelError) -> HardwareInfo in
            var info = iommu_hw_info()
            info.size = UInt32(MemoryLayout<iommu_hw_info>.size)
            info.dev_id = deviceID
            info.data_len = UInt32(vtdBytes.count)
            info.data_uptr = UInt64(UInt(bitPattern: vtdBytes.baseAddress))
            try syscalls.call(fd, .getHWInfo, &info, on: "iommufd device \(deviceID)")
            let raw = RawBytes(vtdBytes.baseAddress!)
            return HardwareInfo(dataType: info.out_data_type, maxPASIDLog2: info.out_max_pasid_log2,
                                capabilities: info.out_capabilities,
                                capabilityRegister: raw.u64(8), extendedCapabilityRegister: raw.u64(16))
        }
    }

    /// `IOMMU_IOAS_ALLOC`: a new I/O address space.
    public func allocateIOAS() throws(KernelError) -> UInt32 {
        var alloc = iommu_ioas_alloc()
        alloc.size = UInt32(MemoryLayout<iommu_ioas_alloc>.size)
        try syscalls.call(fd, .ioasAlloc, &alloc, on: "iommufd")
        return alloc.out_ioas_id
    }

    /// `IOMMU_IOAS_MAP` at a fixed IOVA, read-write.
    public func map(ioas: UInt32, vaddr: UInt64, iova: UInt64, length: UInt64) throws(KernelError) {
        var map = iommu_ioas_map()
        map.size = UInt32(MemoryLayout<iommu_ioas_map>.size)
        map.flags = UInt32(IOMMU_IOAS_MAP_FIXED_IOVA.rawValue | IOMMU_IOAS_MAP_READABLE.rawValue | IOMMU_IOAS_MAP_WRITEABLE.rawValue)
        map.ioas_id = ioas
        map.user_va = vaddr
        map.iova = iova
        map.length = length
        try syscalls.call(fd, .ioasMap, &map, on: "IOAS \(ioas) iova 0x\(String(iova, radix: 16))")
    }

    /// `IOMMU_IOAS_UNMAP`: returns the bytes unmapped.
    @discardableResult
    public func unmap(ioas: UInt32, iova: UInt64, length: UInt64) throws(KernelError) -> UInt64 {
        var unmap = iommu_ioas_unmap()
        unmap.size = UInt32(MemoryLayout<iommu_ioas_unmap>.size)
        unmap.ioas_id = ioas
        unmap.iova = iova
        unmap.length = length
        try syscalls.call(fd, .ioasUnmap, &unmap, on: "IOAS \(ioas) iova 0x\(String(iova, radix: 16))")
        return unmap.length
    }

    /// `IOMMU_HWPT_ALLOC` with `NEST_PARENT` over an IOAS: the stage-2 table for guest memory.
    public func allocateNestingParent(deviceID: UInt32, ioas: UInt32) throws(KernelError) -> UInt32 {
        var alloc = iommu_hwpt_alloc()
        alloc.size = UInt32(MemoryLayout<iommu_hwpt_alloc>.size)
        alloc.flags = UInt32(IOMMU_HWPT_ALLOC_NEST_PARENT.rawValue)
        alloc.dev_id = deviceID
        alloc.pt_id = ioas
        alloc.data_type = IOMMU_HWPT_DATA_NONE.rawValue
        try syscalls.call(fd, .hwptAlloc, &alloc, on: "device \(deviceID) IOAS \(ioas)")
        return alloc.out_hwpt_id
    }

    /// `IOMMU_HWPT_ALLOC` of a VT-d stage-1 table (the guest's page table) nested on `parent`.
    public func allocateStage1(deviceID: UInt32, parent: UInt32, pageTable: UInt64, addressWidth: UInt32,
                               flags: UInt64, forPASID: Bool) throws(KernelError) -> UInt32 {
        var s1 = iommu_hwpt_vtd_s1()
        s1.flags = flags
        s1.pgtbl_addr = pageTable
        s1.addr_width = addressWidth
        return try withUnsafeMutableBytes(of: &s1) { (data) throws(KernelError) -> UInt32 in
            var alloc = iommu_hwpt_alloc()
            alloc.size = UInt32(MemoryLayout<iommu_hwpt_alloc>.size)
            alloc.flags = forPASID ? UInt32(IOMMU_HWPT_ALLOC_PASID.rawValue) : 0
            alloc.dev_id = deviceID
            alloc.pt_id = parent
            alloc.data_type = IOMMU_HWPT_DATA_VTD_S1.rawValue
            alloc.data_len = UInt32(data.count)
            alloc.data_uptr = UInt64(UInt(bitPattern: data.baseAddress))
            try syscalls.call(fd, .hwptAlloc, &alloc, on: "device \(deviceID) parent HWPT \(parent)")
            return alloc.out_hwpt_id
        }
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT`: attach the device (or one of its PASIDs) to `pageTable`.
    /// Attaching a PASID again replaces its table atomically. Returns the `pt_id` the kernel
    /// answers: for an IOAS, the id of the HWPT it created for the device (Linux), else `pageTable`.
    @discardableResult
    public func attach(_ device: VFIODevice, to pageTable: UInt32, pasid: UInt32? = nil) throws(KernelError) -> UInt32 {
        var attach = vfio_device_attach_iommufd_pt()
        attach.argsz = UInt32(MemoryLayout<vfio_device_attach_iommufd_pt>.size)
        attach.flags = pasid == nil ? 0 : UInt32(VFIO_DEVICE_ATTACH_PASID)
        attach.pt_id = pageTable
        attach.pasid = pasid ?? 0
        try syscalls.call(device.fd, .deviceAttachPT, &attach, on: "device \(device.address)\(pasid.map { " PASID \($0)" } ?? "")")
        return attach.pt_id
    }

    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` for the device or one of its PASIDs.
    public func detach(_ device: VFIODevice, pasid: UInt32? = nil) throws(KernelError) {
        var detach = vfio_device_detach_iommufd_pt()
        detach.argsz = UInt32(MemoryLayout<vfio_device_detach_iommufd_pt>.size)
        detach.flags = pasid == nil ? 0 : UInt32(VFIO_DEVICE_ATTACH_PASID)
        detach.pasid = pasid ?? 0
        try syscalls.call(device.fd, .deviceDetachPT, &detach, on: "device \(device.address)\(pasid.map { " PASID \($0)" } ?? "")")
    }

    /// `IOMMU_DESTROY` of an object (IOAS or HWPT); EBUSY while in use.
    public func destroy(_ id: UInt32) throws(KernelError) {
        var destroy = iommu_destroy()
        destroy.size = UInt32(MemoryLayout<iommu_destroy>.size)
        destroy.id = id
        try syscalls.call(fd, .iommuDestroy, &destroy, on: "iommufd object \(id)")
    }
}
