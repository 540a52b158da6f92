import ArgumentParser
import BinderyKernel
import CBinderyKernel
import Foundation

/// The executor against a real kernel (run inside the QEMU guest by `make kernel-test`):
/// the type1 sequence and the error cases of KERNEL.md (or, with `--iommufd`, the iommufd
/// sequence: KernelCheck+IOMMUFD.swift), each printed as `ok` or `FAIL`.
struct KernelCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-check",
        abstract: "Check the VFIO executor against this machine's kernel and a vfio-pci device (for make kernel-test)."
    )

    @Option(help: "PCI address of a device in its own IOMMU group (it is rebound to vfio-pci).") var device: String
    @Option(name: .customLong("sysfs-root"), help: "Sysfs mount.") var sysfsRoot = "/sys"
    @Flag(help: "Check the iommufd path instead (/dev/iommu and the device's VFIO cdev; needs CONFIG_IOMMUFD and VFIO_DEVICE_CDEV).")
    var iommufd = false

    final class Report {
        var failures = 0
        func expect(_ name: String, _ condition: Bool, _ detail: @autoclosure () -> String = "") {
            print(condition ? "ok   \(name)" : "FAIL \(name) \(detail())")
            if !condition { failures += 1 }
        }
        func expectErrno(_ name: String, _ errno: Errno, _ body: () throws -> Void) {
            do {
                try body()
                expect(name, false, "succeeded, expected \(errno.name)")
            } catch let error as KernelError {
                expect(name, error.errno == errno, "got \(error)")
            } catch {
                expect(name, false, "\(error)")
            }
        }
    }

    func run() throws {
        let report = Report()
        if iommufd {
            try runIOMMUFD(report)
            print(report.failures == 0 ? "kernel-check --iommufd: all passed" : "kernel-check --iommufd: \(report.failures) failed")
            if report.failures > 0 { throw ExitCode(1) }
            return
        }
        let syscalls = LinuxSyscalls()
        let inventory = SysfsInventory(syscalls: syscalls, root: sysfsRoot)
        let found = try inventory.device(device)
        report.expect("inventory reads \(device) (vendor 0x\(String(found.vendorID, radix: 16)))", found.iommuGroup != nil)
        let original = try DriverBinder(inventory: inventory).bindToVFIO(device)
        report.expect("managed rebinding puts \(device) on vfio-pci (was \(original ?? "no driver"))", try inventory.driver(of: device) == "vfio-pci")
        let group = found.iommuGroup!

        let container = try VFIOContainer(syscalls: syscalls)
        report.expect("VFIO_GET_API_VERSION is 0", true)
        report.expect("VFIO_CHECK_EXTENSION(TYPE1v2)", try container.checkExtension(VFIO_TYPE1v2_IOMMU))
        report.expectErrno("unknown ioctl before SET_IOMMU is EINVAL", .EINVAL) { _ = try container.info() }
        report.expectErrno("SET_IOMMU before any group is EINVAL", .EINVAL) { try container.setIOMMU(VFIO_TYPE1v2_IOMMU) }
        let vfioGroup = try VFIOGroup(number: group, syscalls: syscalls)
        report.expectErrno("opening the group twice is EBUSY", .EBUSY) { _ = try VFIOGroup(number: group, syscalls: syscalls) }
        report.expect("group \(group) is viable", try vfioGroup.status().isViable)
        report.expectErrno("GET_DEVICE_FD before a container is EINVAL", .EINVAL) { _ = try vfioGroup.openDevice(device) }
        try vfioGroup.setContainer(container)
        report.expectErrno("SET_CONTAINER twice is EINVAL", .EINVAL) { try vfioGroup.setContainer(container) }
        report.expectErrno("SET_IOMMU(NESTING) without nesting hardware is EINVAL", .EINVAL) { try container.setIOMMU(VFIO_TYPE1_NESTING_IOMMU) }
        report.expectErrno("SET_IOMMU of an unknown type is ENODEV", .ENODEV) { try container.setIOMMU(42) }
        try container.setIOMMU(VFIO_TYPE1v2_IOMMU)
        report.expectErrno("SET_IOMMU twice is EINVAL", .EINVAL) { try container.setIOMMU(VFIO_TYPE1v2_IOMMU) }
        let info = try container.info()
        report.expect("GET_INFO two-pass decodes \(info.capabilities.count) capabilities", !info.capabilities.isEmpty)
        report.expect("GET_INFO reports IOVA ranges", info.iovaRanges?.isEmpty == false)
        report.expect("GET_INFO reports no nesting capability", info.nesting == nil)
        let memory = syscalls.mmap(length: 4 << 20, fd: -1, offset: 0)
        guard case let .success(vaddr) = memory else { throw ValidationError("mmap failed: \(memory)") }
        try container.mapDMA(vaddr: vaddr, iova: 0x10_0000, size: 2 << 20)
        report.expect("MAP_DMA of 2 MiB at 0x100000", true)
        report.expectErrno("overlapping MAP_DMA is EEXIST", .EEXIST) { try container.mapDMA(vaddr: vaddr + (2 << 20), iova: 0x20_0000, size: 0x1000) }
        report.expectErrno("unaligned MAP_DMA is EINVAL", .EINVAL) { try container.mapDMA(vaddr: vaddr, iova: 0x40_0800, size: 0x1000) }
        report.expectErrno("MAP_DMA in the MSI window is EINVAL", .EINVAL) { try container.mapDMA(vaddr: vaddr, iova: 0xfee0_0000, size: 0x1000) }
        report.expectErrno("UNMAP_DMA cutting a mapping is EINVAL", .EINVAL) { try container.unmapDMA(iova: 0x10_0000, size: 0x1000) }
        report.expect("UNMAP_DMA of a never-mapped range unmaps 0", try container.unmapDMA(iova: 0x1000_0000, size: 0x1000) == 0)
        report.expect("UNMAP_DMA of the mapping unmaps 2 MiB", try container.unmapDMA(iova: 0x10_0000, size: 2 << 20) == 2 << 20)
        let deviceFD = try vfioGroup.openDevice(device)
        report.expect("VFIO_DEVICE_GET_INFO says PCI", try deviceFD.info().isPCI)
        report.expectErrno("GET_DEVICE_FD of an unknown name is ENODEV", .ENODEV) { _ = try vfioGroup.openDevice("0000:ff:1f.7") }
        report.expectErrno("UNSET_CONTAINER with a device open is EBUSY", .EBUSY) { try vfioGroup.unsetContainer() }
        var scratch = [UInt8](repeating: 0, count: 64)
        let bogus = scratch.withUnsafeMutableBytes { syscalls.ioctl(container.fd, IoctlRequest("BOGUS", 0x3bff), $0.baseAddress!) }
        report.expect("unknown ioctl after SET_IOMMU is ENOTTY", bogus == -Errno.ENOTTY.code, "got \(Errno(-bogus))")
        deviceFD.close()
        try vfioGroup.unsetContainer()
        vfioGroup.close()
        container.close()
        let capabilities = CapabilityProbe(syscalls: syscalls, inventory: inventory).discover()
        report.expect("capability probe: linux driver, type1v2, nesting unsupported (\(capabilities.nesting.reason ?? ""))",
                      capabilities.kernelDriver == "linux" && capabilities.type1v2 && !capabilities.nesting.supported)
        try DriverBinder(inventory: inventory).restore(device, to: original)
        report.expect("restored to \(original ?? "no driver")", try inventory.driver(of: device) == original)
        print(report.failures == 0 ? "kernel-check: all passed" : "kernel-check: \(report.failures) failed")
        if report.failures > 0 { throw ExitCode(1) }
    }
}
