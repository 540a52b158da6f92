// Linux uapi for Bindery's VFIO executor: VFIO type1 (from the installed linux/vfio.h),
// the type1 nesting ABI from the VFIO guest-PASID design discussion (never merged upstream;
// the simulated kernel implements it), and the iommufd subset Bindery uses (absent from
// Debian 12's 6.1 headers, so defined here with the upstream numbers and layouts).
// Swift cannot call variadic ioctl(2) or evaluate _IO* macros: see the wrappers at the end.
#ifndef BINDERY_CBINDERYKERNEL_H
#define BINDERY_CBINDERYKERNEL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/types.h>
#include <linux/vfio.h>

// ---------------------------------------------------------------------------------------
// Type1 nesting ABI (as proposed in 2019–2020, 5.10+ payload layout).
// The series never settled its ioctl numbers and capability id; these are Bindery's
// simulated ABI values, chosen clear of numbers upstream later reused (VFIO_BASE + 18..20
// are now the iommufd cdev calls). A real kernel never advertises the capability, so
// Bindery never sends these to one.
// ---------------------------------------------------------------------------------------
#define BINDERY_VFIO_IOMMU_TYPE1_INFO_CAP_NESTING 0x40   /* simulated ABI */
#define BINDERY_VFIO_IOMMU_PASID_REQUEST  _IO(VFIO_TYPE, VFIO_BASE + 40)  /* simulated ABI */
#define BINDERY_VFIO_IOMMU_NESTING_OP     _IO(VFIO_TYPE, VFIO_BASE + 41)  /* simulated ABI */

#define IOMMU_GPASID_BIND_VERSION_1 1
#define IOMMU_PASID_FORMAT_INTEL_VTD 1
#define IOMMU_SVA_GPASID_VAL (1 << 0)

#define IOMMU_SVA_VTD_GPASID_SRE  (1 << 0)
#define IOMMU_SVA_VTD_GPASID_EAFE (1 << 1)
#define IOMMU_SVA_VTD_GPASID_PCD  (1 << 2)
#define IOMMU_SVA_VTD_GPASID_PWT  (1 << 3)
#define IOMMU_SVA_VTD_GPASID_EMTE (1 << 4)
#define IOMMU_SVA_VTD_GPASID_CD   (1 << 5)
#define IOMMU_SVA_VTD_GPASID_WPE  (1 << 6)
#define IOMMU_SVA_VTD_GPASID_LAST (1 << 7)

struct iommu_gpasid_bind_data_vtd {          /* 16 bytes */
    __u64 flags;
    __u32 pat;
    __u32 emt;
};

struct iommu_gpasid_bind_data {              /* 72 bytes */
    __u32 argsz;
    __u32 version;
    __u32 format;
    __u32 addr_width;
    __u64 flags;
    __u64 gpgd;
    __u64 hpasid;
    __u64 gpasid;
    __u8  padding[8];
    union {
        struct iommu_gpasid_bind_data_vtd vtd;
    } vendor;
};

#define VFIO_IOMMU_NESTING_OP_MASK      0xffff
#define VFIO_IOMMU_NESTING_OP_BIND_PGTBL   0
#define VFIO_IOMMU_NESTING_OP_UNBIND_PGTBL 1
#define VFIO_IOMMU_NESTING_OP_CACHE_INVLD  2

struct vfio_iommu_type1_nesting_op {
    __u32 argsz;
    __u32 flags;
    __u8  data[];
};

#define VFIO_IOMMU_FLAG_ALLOC_PASID (1 << 0)
#define VFIO_IOMMU_FLAG_FREE_PASID  (1 << 1)

struct vfio_iommu_type1_pasid_range {
    __u32 min;
    __u32 max;
};

struct vfio_iommu_type1_pasid_request {
    __u32 argsz;
    __u32 flags;
    struct vfio_iommu_type1_pasid_range range;
};

#define IOMMU_NESTING_FEAT_BIND_PGTBL (1 << 1)
#define IOMMU_NESTING_FEAT_CACHE_INVLD (1 << 2)

struct iommu_nesting_info_vtd {
    __u32 flags;
    __u32 padding;
    __u64 cap_reg;
    __u64 ecap_reg;
};

struct iommu_nesting_info {
    __u32 argsz;
    __u32 flags;
    __u32 format;
    __u32 features;
    __u16 addr_width;
    __u16 pasid_bits;
    __u8  padding[12];
    union {
        struct iommu_nesting_info_vtd vtd;
    } vendor;
};

/// GET_INFO capability carrying iommu_nesting_info (simulated ABI id).
struct vfio_iommu_type1_info_cap_nesting {
    struct vfio_info_cap_header header;
    struct iommu_nesting_info info;
};

// ---------------------------------------------------------------------------------------
// iommufd (upstream, 6.2+; cdev and GET_HW_INFO 6.6; nested VT-d 6.7; PASID attach 6.15).
// ---------------------------------------------------------------------------------------
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#else
#define IOMMUFD_TYPE (';')
#define IOMMUFD_CMD_DESTROY       0x80
#define IOMMUFD_CMD_IOAS_ALLOC    0x81
#define IOMMUFD_CMD_IOAS_MAP      0x85
#define IOMMUFD_CMD_IOAS_UNMAP    0x86
#define IOMMUFD_CMD_HWPT_ALLOC    0x89
#define IOMMUFD_CMD_GET_HW_INFO   0x8a
#define IOMMUFD_CMD_HWPT_INVALIDATE 0x8d

struct iommu_destroy { __u32 size; __u32 id; };
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

struct iommu_ioas_alloc { __u32 size; __u32 flags; __u32 out_ioas_id; };
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

enum iommufd_ioas_map_flags {
    IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
    IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
    IOMMU_IOAS_MAP_READABLE = 1 << 2,
};
struct iommu_ioas_map {
    __u32 size; __u32 flags; __u32 ioas_id; __u32 __reserved;
    __aligned_u64 user_va; __aligned_u64 length; __aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

struct iommu_ioas_unmap { __u32 size; __u32 ioas_id; __aligned_u64 iova; __aligned_u64 length; };
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

enum iommufd_hwpt_alloc_flags {
    IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
    IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
    IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,
    IOMMU_HWPT_ALLOC_PASID = 1 << 3,
};
enum iommu_hwpt_vtd_s1_flags {
    IOMMU_VTD_S1_SRE = 1 << 0,
    IOMMU_VTD_S1_EAFE = 1 << 1,
    IOMMU_VTD_S1_WPE = 1 << 2,
};
struct iommu_hwpt_vtd_s1 {
    __aligned_u64 flags; __aligned_u64 pgtbl_addr; __u32 addr_width; __u32 __reserved;
};
enum iommu_hwpt_data_type {
    IOMMU_HWPT_DATA_NONE = 0,
    IOMMU_HWPT_DATA_VTD_S1 = 1,
};
struct iommu_hwpt_alloc {
    __u32 size; __u32 flags; __u32 dev_id; __u32 pt_id; __u32 out_hwpt_id; __u32 __reserved;
    __u32 data_type; __u32 data_len; __aligned_u64 data_uptr; __u32 fault_id; __u32 __reserved2;
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

struct iommu_hw_info_vtd { __u32 flags; __u32 __reserved; __aligned_u64 cap_reg; __aligned_u64 ecap_reg; };
enum iommu_hw_info_type {
    IOMMU_HW_INFO_TYPE_NONE = 0,
    IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,
};
enum iommufd_hw_capabilities {
    IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0,
    IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1,
    IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2,
};
struct iommu_hw_info {
    __u32 size; __u32 flags; __u32 dev_id; __u32 data_len; __aligned_u64 data_uptr;
    __u32 out_data_type; __u8 out_max_pasid_log2; __u8 __reserved[3]; __aligned_u64 out_capabilities;
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)
#endif

#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd { __u32 argsz; __u32 flags; __s32 iommufd; __u32 out_devid; };
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#define VFIO_DEVICE_ATTACH_PASID (1 << 0)
struct vfio_device_attach_iommufd_pt { __u32 argsz; __u32 flags; __u32 pt_id; __u32 pasid; };
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
struct vfio_device_detach_iommufd_pt { __u32 argsz; __u32 flags; __u32 pasid; };
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)
#endif

// ---------------------------------------------------------------------------------------
// Request codes as functions (Swift does not import _IO* macros) and a non-variadic ioctl.
// ---------------------------------------------------------------------------------------
#define BINDERY_REQUEST(name) static inline unsigned long bindery_req_##name(void) { return name; }
BINDERY_REQUEST(VFIO_GET_API_VERSION)
BINDERY_REQUEST(VFIO_CHECK_EXTENSION)
BINDERY_REQUEST(VFIO_SET_IOMMU)
BINDERY_REQUEST(VFIO_GROUP_GET_STATUS)
BINDERY_REQUEST(VFIO_GROUP_SET_CONTAINER)
BINDERY_REQUEST(VFIO_GROUP_UNSET_CONTAINER)
BINDERY_REQUEST(VFIO_GROUP_GET_DEVICE_FD)
BINDERY_REQUEST(VFIO_DEVICE_GET_INFO)
BINDERY_REQUEST(VFIO_DEVICE_GET_REGION_INFO)
BINDERY_REQUEST(VFIO_IOMMU_GET_INFO)
BINDERY_REQUEST(VFIO_IOMMU_MAP_DMA)
BINDERY_REQUEST(VFIO_IOMMU_UNMAP_DMA)
BINDERY_REQUEST(BINDERY_VFIO_IOMMU_PASID_REQUEST)
BINDERY_REQUEST(BINDERY_VFIO_IOMMU_NESTING_OP)
BINDERY_REQUEST(VFIO_DEVICE_BIND_IOMMUFD)
BINDERY_REQUEST(VFIO_DEVICE_ATTACH_IOMMUFD_PT)
BINDERY_REQUEST(VFIO_DEVICE_DETACH_IOMMUFD_PT)
BINDERY_REQUEST(IOMMU_DESTROY)
BINDERY_REQUEST(IOMMU_IOAS_ALLOC)
BINDERY_REQUEST(IOMMU_IOAS_MAP)
BINDERY_REQUEST(IOMMU_IOAS_UNMAP)
BINDERY_REQUEST(IOMMU_HWPT_ALLOC)
BINDERY_REQUEST(IOMMU_GET_HW_INFO)
#undef BINDERY_REQUEST

/// ioctl(2) with a pointer argument. Returns the syscall's result; errno is set on -1.
static inline int bindery_ioctl_pointer(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument);
}

/// ioctl(2) with an integer argument (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU, ...).
static inline int bindery_ioctl_value(int fd, unsigned long request, unsigned long argument) {
    return ioctl(fd, request, argument);
}

/// open(2) without varargs.
/// A duplicate of `fd` numbered 3 or above, close-on-exec: what a hand-off sends.
static inline int bindery_duplicate(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 3); }

/// An anonymous memory file named `name` (close-on-exec): stands in for a simulated kernel
/// object that must leave the process as a real descriptor. In shim.c (needs _GNU_SOURCE).
int bindery_memfd(const char *name);

static inline int bindery_open(const char *path, int flags, unsigned int mode) {
    return open(path, flags, mode);
}

#endif
#include "CBinderyOpenBeneath.h"
