@testable import BinderyKernel
import CBinderyKernel
import Glibc
import XCTest

/// The simulated kernel's descriptors and the real ones it hands out for VMMs never share a
/// number, and closing either closes that one.
final class SimulatedDescriptorTests: XCTestCase {
    /// A VMM's duplicate is a real memory file: closing it through the kernel closes it for
    /// real and leaves the simulated file it copies open. Before, the close went to the
    /// simulated table, left the memory file open, and closed whichever simulated file had
    /// its number (a VM's container, once the process held 100 real descriptors).
    func testClosingADuplicateClosesItForRealAndNothingElse() throws {
        let kernel = SimulatedKernel()
        let container = try VFIOContainer(syscalls: kernel)
        XCTAssertGreaterThanOrEqual(container.fd, SimulatedKernel.firstFD, "simulated numbers sit above every real one")
        // Hold real descriptors up to and past the container's number's range, as a busy process does.
        var held: [Int32] = []
        defer { held.forEach { _ = Glibc.close($0) } }
        for _ in 0..<150 { held.append(dup(2)) }

        for _ in 0..<3 {
            let copy = kernel.duplicate(container.fd, describing: "vfio-container")
            XCTAssertGreaterThanOrEqual(copy, 0)
            XCTAssertLessThan(copy, SimulatedKernel.firstFD)
            XCTAssertNotEqual(fcntl(copy, F_GETFD), -1, "a real descriptor")
            XCTAssertEqual(kernel.close(copy), 0)
            XCTAssertEqual(fcntl(copy, F_GETFD), -1, "closed for real")
            XCTAssertEqual(errno, EBADF)
        }
        XCTAssertTrue(try container.checkExtension(VFIO_TYPE1v2_IOMMU), "the container is still open")
        let fd = container.fd
        container.close()
        XCTAssertEqual(kernel.close(fd), -EBADF, "closed once, by its owner")
    }
}
