@testable import BinderyKernel
import CBinderyKernel
import XCTest

/// The nesting payload decoder, directly and through the simulated kernel's NESTING_OP.
final class BindPayloadDecoderTests: XCTestCase {
    private let valid = GuestPageTableBind(addressWidth: 48, pageTable: 0x1f000_0000, hostPASID: 5, guestPASID: 7,
                                           vtdFlags: UInt64(IOMMU_SVA_VTD_GPASID_SRE), pat: 0x0706, emt: 1)

    private func decode(_ mutate: (RawBytes) -> Void = { _ in }, available: Int = 72) -> Result<GuestPageTableBind, GuestPageTableBind.DecodeFailure> {
        var data = valid.cStruct
        return withUnsafeMutableBytes(of: &data) { buffer in
            mutate(RawBytes(buffer.baseAddress!))
            return GuestPageTableBind.decode(RawBytes(buffer.baseAddress!), available: available)
        }
    }

    func testValidPayloadRoundTrips() throws {
        XCTAssertEqual(try decode().get(), valid)
    }

    func testGuestPASIDIsReadOnlyWhenFlagged() throws {
        let decoded = try decode { $0.set(16, u64: 0) }.get()
        XCTAssertNil(decoded.guestPASID)
    }

    func testEachMalformedPayloadIsRefusedWithItsReason() {
        let cases: [(String, (RawBytes) -> Void, Int, String)] = [
            ("argsz below 72", { $0.set(0, u32: 71) }, 72, "argsz 71"),
            ("version 2", { $0.set(4, u32: 2) }, 72, "unknown version 2"),
            ("version 0", { $0.set(4, u32: 0) }, 72, "unknown version 0"),
            ("format 2", { $0.set(8, u32: 2) }, 72, "unknown format 2"),
            ("unknown flag", { $0.set(16, u64: 1 << 1) }, 72, "unknown flags"),
            ("padding", { $0.set(50, u8: 1) }, 72, "non-zero padding"),
            ("unknown VT-d flag", { $0.set(56, u64: 1 << 7) }, 72, "unknown VT-d flags"),
            ("call shorter than payload", { _ in }, 64, "call carries 64 bytes"),
            ("call shorter than header", { _ in }, 8, "shorter than its argsz/version/format header"),
        ]
        for (name, mutate, available, reason) in cases {
            switch decode(mutate, available: available) {
            case .success: XCTFail("\(name) must be refused")
            case let .failure(failure): XCTAssertTrue(failure.reason.contains(reason), "\(name): \(failure.reason)")
            }
        }
    }

    /// The same cases through the simulated kernel's ioctl: each must be EINVAL, and none may bind.
    func testSimulatedKernelAnswersEINVALForMalformedPayloads() throws {
        let kernel = SimulatedKernel()
        let inventory = SysfsInventory(syscalls: kernel)
        let vm = try VMContext(syscalls: kernel, inventory: inventory, memory: [GuestMemoryRegion(guestAddress: 0, size: 1 << 30)])
        try vm.attach("0000:3b:00.0")
        let pasid = try vm.allocatePASID()
        let mutations: [(String, (RawBytes) -> Void)] = [
            ("op argsz short", { $0.set(0, u32: 8 + 71) }),
            ("payload argsz short", { $0.set(8, u32: 64) }),
            ("version", { $0.set(12, u32: 9) }),
            ("format", { $0.set(16, u32: 3) }),
            ("flags", { $0.set(24, u64: 0x10) }),
            ("padding", { $0.set(8 + 48, u8: 0xff) }),
            ("op flags above 16 bits", { $0.set(4, u32: 1 << 16) }),
            ("unknown op", { $0.set(4, u32: 7) }),
            ("address width 40", { $0.set(8 + 12, u32: 40) }),
            ("unaligned table", { $0.set(8 + 24, u64: 0x1234) }),
            ("unallocated host PASID", { $0.set(8 + 32, u64: UInt64(pasid) + 1) }),
        ]
        for (name, mutate) in mutations {
            let buffer = KernelBuffer(count: 80)
            buffer.raw.set(0, u32: 80)
            buffer.raw.set(4, u32: UInt32(VFIO_IOMMU_NESTING_OP_BIND_PGTBL))
            var data = GuestPageTableBind(addressWidth: 48, pageTable: 0x10_0000, hostPASID: UInt64(pasid)).cStruct
            withUnsafeBytes(of: &data) { buffer.bytes.baseAddress!.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: 72) }
            mutate(buffer.raw)
            XCTAssertEqual(kernel.ioctl(vm.container.fd, .nestingOp, buffer.bytes.baseAddress!), -Errno.EINVAL.code, name)
        }
        XCTAssertEqual(kernel.boundTables(of: "0000:3b:00.0"), [:])
    }
}
