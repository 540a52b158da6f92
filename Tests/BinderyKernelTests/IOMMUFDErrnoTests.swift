import BinderyKernel
import CBinderyKernel
import XCTest

/// The simulated iommufd answers as the real 6.12 did in QEMU (KERNEL.md).
final class IOMMUFDErrnoTests: XCTestCase {
    func testGetHWInfoNegotiatesTheStructSizeLike612() throws {
        let kernel = SimulatedKernel(host: SimulatedHostProfile.iommufd.host)
        let context = try IOMMUFD(syscalls: kernel)
        let path = try XCTUnwrap(SysfsInventory(syscalls: kernel).vfioCdevPath(of: "0000:3b:00.0"))
        let device = try VFIODevice(cdev: path, address: "0000:3b:00.0", syscalls: kernel)
        let deviceID = try context.bind(device)
        func call(size: Int, trailing: UInt8 = 0) -> Int32 {
            var buffer = [UInt8](repeating: 0, count: 64)
            buffer.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt32(size), toByteOffset: 0, as: UInt32.self)
                raw.storeBytes(of: deviceID, toByteOffset: 8, as: UInt32.self)
                if size > 40 { raw[size - 1] = trailing }
            }
            return buffer.withUnsafeMutableBytes { kernel.ioctl(context.fd, .getHWInfo, $0.baseAddress!) }
        }
        XCTAssertEqual(call(size: 24), -EINVAL, "below 32 bytes")
        XCTAssertEqual(call(size: 32), 0, "a caller that knows no out_capabilities")
        XCTAssertEqual(call(size: 40), 0)
        XCTAssertEqual(call(size: 48), 0, "a newer caller's zero tail")
        XCTAssertEqual(call(size: 48, trailing: 1), -E2BIG, "non-zero bytes the kernel does not know")
    }
}
