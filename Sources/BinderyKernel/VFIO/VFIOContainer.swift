import CBinderyKernel
import Glibc

/// A VFIO type1 container (`/dev/vfio/vfio`): one IOMMU context, i.e. one VM.
/// Closing it makes the kernel drop every mapping and binding made through it.
public final class VFIOContainer: @unchecked Sendable {
    /// The boundary every call goes through.
    public let syscalls: any Syscalls
    /// The container's file descriptor (-1 once closed).
    public private(set) var fd: Int32
    /// The IOMMU type set with `setIOMMU`, if any.
    public internal(set) var iommuType: Int32?

    /// The path of the container device.
    public static let path = "/dev/vfio/vfio"

    /// Opens a container and checks the API version (`VFIO_API_VERSION`, 0).
    public init(syscalls: any Syscalls) throws(KernelError) {
        self.syscalls = syscalls
        fd = try syscalls.openOrThrow(Self.path, flags: O_RDWR)
        let version = syscalls.ioctl(fd, .getAPIVersion, value: 0)
        guard version == VFIO_API_VERSION else {
            _ = syscalls.close(fd)
            fd = -1
            if version < 0 { throw .ioctl(call: "VFIO_GET_API_VERSION", errno: Errno(-version), resource: Self.path) }
            throw .unexpected(call: "VFIO_GET_API_VERSION", detail: "kernel speaks VFIO API \(version), Bindery speaks \(VFIO_API_VERSION)")
        }
    }

    /// Adopts a container a previous process kept (the service manager's fd store), checking
    /// with the kernel that it is one: `VFIO_GET_API_VERSION` answers, and `VFIO_IOMMU_GET_INFO`
    /// tells whether its IOMMU is set (`iommuType` becomes `type` then).
    public init(adopting fd: Int32, type: Int32, syscalls: any Syscalls) throws(KernelError) {
        self.syscalls = syscalls
        self.fd = fd
        let version = syscalls.ioctl(fd, .getAPIVersion, value: 0)
        guard version == VFIO_API_VERSION else {
            self.fd = -1
            throw .unexpected(call: "VFIO_GET_API_VERSION", detail: "adopted fd \(fd) is not a VFIO container (\(version))")
        }
        if (try? info()) != nil { iommuType = type }
    }

    deinit { close() }

    /// Releases the container; the kernel drops its mappings and bindings.
    public func close() {
        if fd >= 0 { _ = syscalls.close(fd) }
        fd = -1
    }

    var resource: String { "container fd \(fd)" }

    /// `VFIO_CHECK_EXTENSION`: whether the kernel offers `extensionID` (e.g. `VFIO_TYPE1v2_IOMMU`).
    public func checkExtension(_ extensionID: Int32) throws(KernelError) -> Bool {
        try syscalls.call(fd, .checkExtension, value: UInt(extensionID), on: resource) > 0
    }

    /// `VFIO_SET_IOMMU`: needs at least one group attached.
    public func setIOMMU(_ type: Int32) throws(KernelError) {
        try syscalls.call(fd, .setIOMMU, value: UInt(type), on: resource)
        iommuType = type
    }

    /// `VFIO_IOMMU_GET_INFO`, two-pass: ask with the base size, learn the size the kernel
    /// needs, ask again with that and decode the capability chain.
    public func info() throws(KernelError) -> IOMMUInfo {
        var base = vfio_iommu_type1_info()
        base.argsz = UInt32(MemoryLayout<vfio_iommu_type1_info>.size)
        try syscalls.call(fd, .iommuGetInfo, &base, on: resource)
        let needed = Int(base.argsz)
        guard needed > MemoryLayout<vfio_iommu_type1_info>.size, base.flags & UInt32(VFIO_IOMMU_INFO_CAPS) != 0 else {
            return IOMMUInfo(flags: base.flags, iovaPageSizes: base.iova_pgsizes, capabilities: [])
        }
        guard needed <= 1 << 20 else {
            throw .unexpected(call: "VFIO_IOMMU_GET_INFO", detail: "kernel asks for \(needed) bytes")
        }
        let buffer = KernelBuffer(count: needed)
        buffer.raw.set(0, u32: UInt32(needed))
        try syscalls.call(fd, .iommuGetInfo, buffer: buffer.bytes, on: resource)
        return try IOMMUInfo.decode(buffer.raw, count: needed)
    }

    /// `VFIO_IOMMU_MAP_DMA`: map `size` bytes at user address `vaddr` to `iova`, read-write.
    public func mapDMA(vaddr: UInt64, iova: UInt64, size: UInt64) throws(KernelError) {
        var map = vfio_iommu_type1_dma_map()
        map.argsz = UInt32(MemoryLayout<vfio_iommu_type1_dma_map>.size)
        map.flags = UInt32(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
        map.vaddr = vaddr
        map.iova = iova
        map.size = size
        try syscalls.call(fd, .mapDMA, &map, on: "\(resource) iova 0x\(String(iova, radix: 16)) size 0x\(String(size, radix: 16))")
    }

    /// `VFIO_IOMMU_UNMAP_DMA`: returns the bytes the kernel unmapped (0 for a never-mapped range).
    @discardableResult
    public func unmapDMA(iova: UInt64, size: UInt64) throws(KernelError) -> UInt64 {
        var unmap = vfio_iommu_type1_dma_unmap()
        unmap.argsz = UInt32(MemoryLayout<vfio_iommu_type1_dma_unmap>.size)
        unmap.iova = iova
        unmap.size = size
        try syscalls.call(fd, .unmapDMA, &unmap, on: "\(resource) iova 0x\(String(iova, radix: 16))")
        return unmap.size
    }
}
