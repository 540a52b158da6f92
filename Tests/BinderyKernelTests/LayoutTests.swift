import CBinderyKernel
import XCTest

/// Sizes and field offsets of every struct Bindery hands the kernel, against KERNEL.md.
final class LayoutTests: XCTestCase {
    func testNestingPayloadLayout() {
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data_vtd>.size, 16)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.size, 72)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.argsz), 0)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.version), 4)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.format), 8)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.addr_width), 12)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.flags), 16)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.gpgd), 24)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.hpasid), 32)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.gpasid), 40)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.padding), 48)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data>.offset(of: \.vendor), 56)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data_vtd>.offset(of: \.pat), 8)
        XCTAssertEqual(MemoryLayout<iommu_gpasid_bind_data_vtd>.offset(of: \.emt), 12)
        XCTAssertEqual(MemoryLayout<vfio_iommu_type1_nesting_op>.size, 8)
        XCTAssertEqual(MemoryLayout<vfio_iommu_type1_pasid_request>.size, 16)
        XCTAssertEqual(MemoryLayout<vfio_iommu_type1_pasid_request>.offset(of: \.range), 8)
        XCTAssertEqual(MemoryLayout<iommu_nesting_info>.size, 56)
        XCTAssertEqual(MemoryLayout<iommu_nesting_info>.offset(of: \.addr_width), 16)
        XCTAssertEqual(MemoryLayout<iommu_nesting_info>.offset(of: \.pasid_bits), 18)
        XCTAssertEqual(MemoryLayout<iommu_nesting_info>.offset(of: \.vendor), 32)
    }

    func testType1Layout() {
        XCTAssertEqual(MemoryLayout<vfio_iommu_type1_info>.size, 24)
        XCTAssertEqual(MemoryLayout<vfio_iommu_type1_info>.offset(of: \.iova_pgsizes), 8)
        XCTAssertEqual(MemoryLayout<vfio_iommu_type1_info>.offset(of: \.cap_offset), 16)
        XCTAssertEqual(MemoryLayout<vfio_info_cap_header>.size, 8)
        XCTAssertEqual(MemoryLayout<vfio_iommu_type1_dma_map>.size, 32)
        XCTAssertEqual(MemoryLayout<vfio_iommu_type1_dma_unmap>.size, 24)
        XCTAssertEqual(MemoryLayout<vfio_group_status>.size, 8)
        XCTAssertEqual(MemoryLayout<vfio_device_info>.offset(of: \.num_regions), 8)
    }

    func testIOMMUFDLayout() {
        XCTAssertEqual(MemoryLayout<iommu_hw_info>.size, 40)
        XCTAssertEqual(MemoryLayout<iommu_hw_info>.offset(of: \.data_uptr), 16)
        XCTAssertEqual(MemoryLayout<iommu_hw_info>.offset(of: \.out_data_type), 24)
        XCTAssertEqual(MemoryLayout<iommu_hw_info>.offset(of: \.out_max_pasid_log2), 28)
        XCTAssertEqual(MemoryLayout<iommu_hw_info>.offset(of: \.out_capabilities), 32)
        XCTAssertEqual(MemoryLayout<iommu_hw_info_vtd>.size, 24)
        XCTAssertEqual(MemoryLayout<iommu_hwpt_alloc>.size, 48)
        XCTAssertEqual(MemoryLayout<iommu_hwpt_alloc>.offset(of: \.data_type), 24)
        XCTAssertEqual(MemoryLayout<iommu_hwpt_alloc>.offset(of: \.data_uptr), 32)
        XCTAssertEqual(MemoryLayout<iommu_hwpt_alloc>.offset(of: \.fault_id), 40)
        XCTAssertEqual(MemoryLayout<iommu_hwpt_vtd_s1>.size, 24)
        XCTAssertEqual(MemoryLayout<iommu_ioas_alloc>.size, 12)
        XCTAssertEqual(MemoryLayout<iommu_ioas_map>.size, 40)
        XCTAssertEqual(MemoryLayout<iommu_ioas_unmap>.size, 24)
        XCTAssertEqual(MemoryLayout<iommu_destroy>.size, 8)
        XCTAssertEqual(MemoryLayout<vfio_device_bind_iommufd>.size, 16)
        XCTAssertEqual(MemoryLayout<vfio_device_attach_iommufd_pt>.size, 16)
        XCTAssertEqual(MemoryLayout<vfio_device_detach_iommufd_pt>.size, 12)
    }

    func testRequestCodesMatchUpstream() {
        // _IO(';', nr) = (';' << 8) | nr; _IO(VFIO_TYPE, VFIO_BASE + n) = (';' << 8) | (100 + n).
        XCTAssertEqual(bindery_req_IOMMU_IOAS_ALLOC(), 0x3b81)
        XCTAssertEqual(bindery_req_IOMMU_GET_HW_INFO(), 0x3b8a)
        XCTAssertEqual(bindery_req_VFIO_DEVICE_BIND_IOMMUFD(), 0x3b00 | 118)
        XCTAssertEqual(bindery_req_VFIO_IOMMU_MAP_DMA(), 0x3b00 | 113)
        XCTAssertEqual(bindery_req_VFIO_IOMMU_GET_INFO(), 0x3b00 | 112)
    }
}
