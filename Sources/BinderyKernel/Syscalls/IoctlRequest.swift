import CBinderyKernel

/// An ioctl request code with the name errors, metrics and fault plans use.
public struct IoctlRequest: Hashable, Sendable, CustomStringConvertible {
    /// The uapi name, e.g. `VFIO_IOMMU_MAP_DMA`.
    public let name: String
    /// The request code passed to ioctl(2).
    public let code: UInt

    /// A request from its name and code.
    public init(_ name: String, _ code: UInt) {
        self.name = name
        self.code = code
    }

    public var description: String { name }

    /// `VFIO_GET_API_VERSION` on the container.
    public static let getAPIVersion = IoctlRequest("VFIO_GET_API_VERSION", bindery_req_VFIO_GET_API_VERSION())
    /// `VFIO_CHECK_EXTENSION` on the container.
    public static let checkExtension = IoctlRequest("VFIO_CHECK_EXTENSION", bindery_req_VFIO_CHECK_EXTENSION())
    /// `VFIO_SET_IOMMU` on the container.
    public static let setIOMMU = IoctlRequest("VFIO_SET_IOMMU", bindery_req_VFIO_SET_IOMMU())
    /// `VFIO_GROUP_GET_STATUS` on a group.
    public static let groupGetStatus = IoctlRequest("VFIO_GROUP_GET_STATUS", bindery_req_VFIO_GROUP_GET_STATUS())
    /// `VFIO_GROUP_SET_CONTAINER` on a group.
    public static let groupSetContainer = IoctlRequest("VFIO_GROUP_SET_CONTAINER", bindery_req_VFIO_GROUP_SET_CONTAINER())
    /// `VFIO_GROUP_UNSET_CONTAINER` on a group.
    public static let groupUnsetContainer = IoctlRequest("VFIO_GROUP_UNSET_CONTAINER", bindery_req_VFIO_GROUP_UNSET_CONTAINER())
    /// `VFIO_GROUP_GET_DEVICE_FD` on a group.
    public static let groupGetDeviceFD = IoctlRequest("VFIO_GROUP_GET_DEVICE_FD", bindery_req_VFIO_GROUP_GET_DEVICE_FD())
    /// `VFIO_DEVICE_GET_INFO` on a device.
    public static let deviceGetInfo = IoctlRequest("VFIO_DEVICE_GET_INFO", bindery_req_VFIO_DEVICE_GET_INFO())
    /// `VFIO_IOMMU_GET_INFO` on the container.
    public static let iommuGetInfo = IoctlRequest("VFIO_IOMMU_GET_INFO", bindery_req_VFIO_IOMMU_GET_INFO())
    /// `VFIO_IOMMU_MAP_DMA` on the container.
    public static let mapDMA = IoctlRequest("VFIO_IOMMU_MAP_DMA", bindery_req_VFIO_IOMMU_MAP_DMA())
    /// `VFIO_IOMMU_UNMAP_DMA` on the container.
    public static let unmapDMA = IoctlRequest("VFIO_IOMMU_UNMAP_DMA", bindery_req_VFIO_IOMMU_UNMAP_DMA())
    /// `VFIO_IOMMU_PASID_REQUEST` (nesting ABI, simulated number).
    public static let pasidRequest = IoctlRequest("VFIO_IOMMU_PASID_REQUEST", bindery_req_BINDERY_VFIO_IOMMU_PASID_REQUEST())
    /// `VFIO_IOMMU_NESTING_OP` (nesting ABI, simulated number).
    public static let nestingOp = IoctlRequest("VFIO_IOMMU_NESTING_OP", bindery_req_BINDERY_VFIO_IOMMU_NESTING_OP())
    /// `VFIO_DEVICE_BIND_IOMMUFD` on a VFIO cdev.
    public static let deviceBindIOMMUFD = IoctlRequest("VFIO_DEVICE_BIND_IOMMUFD", bindery_req_VFIO_DEVICE_BIND_IOMMUFD())
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` on a VFIO cdev.
    public static let deviceAttachPT = IoctlRequest("VFIO_DEVICE_ATTACH_IOMMUFD_PT", bindery_req_VFIO_DEVICE_ATTACH_IOMMUFD_PT())
    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` on a VFIO cdev.
    public static let deviceDetachPT = IoctlRequest("VFIO_DEVICE_DETACH_IOMMUFD_PT", bindery_req_VFIO_DEVICE_DETACH_IOMMUFD_PT())
    /// `IOMMU_DESTROY` on /dev/iommu.
    public static let iommuDestroy = IoctlRequest("IOMMU_DESTROY", bindery_req_IOMMU_DESTROY())
    /// `IOMMU_IOAS_ALLOC` on /dev/iommu.
    public static let ioasAlloc = IoctlRequest("IOMMU_IOAS_ALLOC", bindery_req_IOMMU_IOAS_ALLOC())
    /// `IOMMU_IOAS_MAP` on /dev/iommu.
    public static let ioasMap = IoctlRequest("IOMMU_IOAS_MAP", bindery_req_IOMMU_IOAS_MAP())
    /// `IOMMU_IOAS_UNMAP` on /dev/iommu.
    public static let ioasUnmap = IoctlRequest("IOMMU_IOAS_UNMAP", bindery_req_IOMMU_IOAS_UNMAP())
    /// `IOMMU_HWPT_ALLOC` on /dev/iommu.
    public static let hwptAlloc = IoctlRequest("IOMMU_HWPT_ALLOC", bindery_req_IOMMU_HWPT_ALLOC())
    /// `IOMMU_GET_HW_INFO` on /dev/iommu.
    public static let getHWInfo = IoctlRequest("IOMMU_GET_HW_INFO", bindery_req_IOMMU_GET_HW_INFO())

    /// Every request Bindery issues, for decoding codes back to names.
    public static let all: [IoctlRequest] = [
        getAPIVersion, checkExtension, setIOMMU, groupGetStatus, groupSetContainer, groupUnsetContainer,
        groupGetDeviceFD, deviceGetInfo, iommuGetInfo, mapDMA, unmapDMA, pasidRequest, nestingOp,
        deviceBindIOMMUFD, deviceAttachPT, deviceDetachPT, iommuDestroy, ioasAlloc, ioasMap, ioasUnmap,
        hwptAlloc, getHWInfo,
    ]
}
