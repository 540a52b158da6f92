import ArgumentParser
import BinderyKernel
import CBinderyKernel
import Glibc

/// `kernel-check --iommufd`: the iommufd half of the executor against a real kernel with
/// `CONFIG_IOMMUFD` and a VFIO cdev (run inside the QEMU guest by `make kernel-test`): the
/// capability probe, the VM context's refusal without nesting, bind, GET_HW_INFO, an IOAS with
/// guest memory from a shared file, attach, a DMA round trip by `edu` through the IOAS, the
/// kernel's refusals of a nesting parent and of a per-PASID attach, detach and destroy.
extension KernelCheck {
    /// Guest memory for the check: a file in /dev/shm, mapped at this IOVA.
    static let memoryIOVA: UInt64 = 0x10_0000
    static let memorySize: UInt64 = 2 << 20

    func runIOMMUFD(_ report: Report) throws {
        let syscalls = LinuxSyscalls()
        let inventory = SysfsInventory(syscalls: syscalls, root: sysfsRoot)
        let found = try inventory.device(device)
        report.expect("inventory reads \(device) (vendor 0x\(String(found.vendorID, radix: 16)))", found.iommuGroup != nil)
        let binder = DriverBinder(inventory: inventory)
        let original = try binder.bindToVFIO(device)
        report.expect("managed rebinding puts \(device) on vfio-pci (was \(original ?? "no driver"))", try inventory.driver(of: device) == "vfio-pci")
        guard let cdevPath = inventory.vfioCdevPath(of: device) else {
            report.expect("\(device) has a VFIO cdev (vfio-dev/ in sysfs)", false, "none: is VFIO_DEVICE_CDEV on?")
            throw ExitCode(1)
        }
        report.expect("\(device) has a VFIO cdev at \(cdevPath)", access(cdevPath, R_OK | W_OK) == 0)

        // What the daemon would report: iommufd present, nesting refused by GET_HW_INFO.
        let capabilities = CapabilityProbe(syscalls: syscalls, inventory: inventory).discover()
        report.expect("capability probe: /dev/iommu opens (iommufd true)", capabilities.iommufd)
        let reason = capabilities.nesting.reason ?? ""
        report.expect("capability probe: nesting unsupported, GET_HW_INFO named in the reason",
                      !capabilities.nesting.supported && reason.contains("IOMMU_GET_HW_INFO"), reason)
        print("probe: iommufd \(capabilities.iommufd), type1v2 \(capabilities.type1v2), nesting unsupported: \(reason)")

        // Guest memory: a shared file in /dev/shm, as a VMM would pass it.
        let directory = "/dev/shm", name = "bindery-iommufd-check"
        let memoryFD = Glibc.open("\(directory)/\(name)", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard memoryFD >= 0, ftruncate(memoryFD, off_t(Self.memorySize)) == 0 else {
            throw ValidationError("cannot create \(directory)/\(name): \(Errno(errno).name)")
        }
        defer { Glibc.close(memoryFD); unlink("\(directory)/\(name)") }

        // The executor's VM context on this kernel: attach must refuse (no nesting) and undo itself.
        do {
            let vm = try IOMMUFDVMContext(syscalls: syscalls, inventory: inventory, memory: [
                GuestMemoryRegion(guestAddress: Self.memoryIOVA, size: Self.memorySize, backingPath: "\(directory)/\(name)", backingDirectory: directory),
            ])
            do {
                try vm.attach(device)
                report.expect("IOMMUFDVMContext.attach refuses without nesting", false, "it attached")
            } catch {
                let refused: Bool
                if case .unsupported(capability: "nested translation", _) = error { refused = true } else { refused = false }
                report.expect("IOMMUFDVMContext.attach refuses: \(error)", refused)
            }
            report.expect("IOMMUFDVMContext keeps no device after the refusal", vm.attachedDevices.isEmpty)
            vm.close()
        }

        let mapping = syscalls.mmap(length: Int(Self.memorySize), fd: memoryFD, offset: 0)
        guard case let .success(vaddr) = mapping else { throw ValidationError("mmap of guest memory failed: \(mapping)") }
        defer { _ = syscalls.munmap(address: vaddr, length: Int(Self.memorySize)) }

        let cdev = try VFIODevice(cdev: cdevPath, address: device, syscalls: syscalls)
        defer { cdev.close() }
        report.expectErrno("VFIO_DEVICE_GET_INFO on the cdev before bind is EINVAL", .EINVAL) { _ = try cdev.info() }
        let iommufd = try IOMMUFD(syscalls: syscalls)
        defer { iommufd.close() }
        let deviceID = try iommufd.bind(cdev)
        report.expect("VFIO_DEVICE_BIND_IOMMUFD: device id \(deviceID)", deviceID > 0)
        report.expectErrno("VFIO_DEVICE_BIND_IOMMUFD again is EINVAL", .EINVAL) { _ = try iommufd.bind(cdev) }
        report.expect("VFIO_DEVICE_GET_INFO after bind says PCI", try cdev.info().isPCI)

        let info = try iommufd.hardwareInfo(deviceID: deviceID)
        let ecap = info.extendedCapabilityRegister
        func bit(_ n: UInt64) -> UInt64 { (ecap >> n) & 1 }
        print("GET_HW_INFO: data type \(info.dataType), cap 0x\(String(info.capabilityRegister, radix: 16)), ecap 0x\(String(ecap, radix: 16)) "
              + "(NEST \(bit(26)), FLTS \(bit(47)), SLTS \(bit(46)), SMTS \(bit(43)), PASID \(bit(40))), max PASID log2 \(info.maxPASIDLog2), capabilities \(info.capabilities)")
        report.expect("GET_HW_INFO data type is Intel VT-d (1)", info.dataType == IOMMU_HW_INFO_TYPE_INTEL_VTD.rawValue, "\(info.dataType)")
        report.expect("GET_HW_INFO: ecap NEST (bit 26) is 0 on QEMU's intel-iommu", bit(26) == 0)
        report.expect("GET_HW_INFO: max PASID log2 is 0 for a device without PASID capability", info.maxPASIDLog2 == 0, "\(info.maxPASIDLog2)")
        checkHardwareInfoSizes(report, iommufd, deviceID: deviceID)

        let ioas = try iommufd.allocateIOAS()
        report.expect("IOMMU_IOAS_ALLOC: IOAS \(ioas)", ioas > 0)
        try iommufd.map(ioas: ioas, vaddr: vaddr, iova: Self.memoryIOVA, length: Self.memorySize)
        report.expect("IOMMU_IOAS_MAP of 2 MiB of /dev/shm memory at IOVA 0x\(String(Self.memoryIOVA, radix: 16))", true)
        report.expectErrno("IOMMU_IOAS_MAP overlapping is EEXIST", .EEXIST) {
            try iommufd.map(ioas: ioas, vaddr: vaddr, iova: Self.memoryIOVA + 0x1000, length: 0x1000)
        }
        // An IOAS with no domain yet has IOVA alignment 1: an unaligned IOVA maps, and then no
        // device can attach (a domain needs page alignment) until it is unmapped.
        report.expect("IOMMU_IOAS_MAP at an unaligned IOVA (0x400800) before any attach is accepted",
                      (try? iommufd.map(ioas: ioas, vaddr: vaddr, iova: 0x40_0800, length: 0x1000)) != nil)
        report.expectErrno("VFIO_DEVICE_ATTACH_IOMMUFD_PT while the IOAS holds an unaligned mapping is EADDRINUSE", .EADDRINUSE) {
            try iommufd.attach(cdev, to: ioas)
        }
        report.expect("IOMMU_IOAS_UNMAP of the unaligned mapping", (try? iommufd.unmap(ioas: ioas, iova: 0x40_0800, length: 0x1000)) == 0x1000)

        let automatic = try iommufd.attach(cdev, to: ioas)
        report.expect("VFIO_DEVICE_ATTACH_IOMMUFD_PT to the IOAS: the kernel made HWPT \(automatic)", automatic != ioas && automatic > 0)
        report.expectErrno("IOMMU_IOAS_MAP unaligned once a device is attached is EINVAL", .EINVAL) {
            try iommufd.map(ioas: ioas, vaddr: vaddr, iova: 0x40_0800, length: 0x1000)
        }
        report.expectErrno("IOMMU_IOAS_MAP in the MSI window (0xfee00000) once a device is attached is EINVAL", .EINVAL) {
            try iommufd.map(ioas: ioas, vaddr: vaddr, iova: 0xfee0_0000, length: 0x1000)
        }

        let edu = try EduDMA(device: cdev)
        report.expect("edu: bus mastering enabled through the VFIO config region", edu.busMaster)
        let memory = UnsafeMutableRawPointer(bitPattern: UInt(vaddr))!
        report.expect("edu DMA round trip (2048 bytes, IOVA 0x100000 → edu → 0x101000) through the IOAS",
                      try edu.roundTrip(memory: memory, iova: Self.memoryIOVA, seed: 0x5a), edu.lastProblem)

        // A nesting parent: QEMU 7.2's VT-d has no nesting.
        report.expectErrno("IOMMU_HWPT_ALLOC with NEST_PARENT is EOPNOTSUPP (no nesting in the emulated VT-d)", .EOPNOTSUPP) {
            _ = try iommufd.allocateNestingParent(deviceID: deviceID, ioas: ioas)
        }
        // A plain paging HWPT over the IOAS, and an atomic replace by attaching to it.
        var paging: UInt32 = 0
        let pagingResult = hwptAllocPaging(iommufd, deviceID: deviceID, ioas: ioas, id: &paging)
        report.expect("IOMMU_HWPT_ALLOC of a plain paging HWPT over the IOAS: HWPT \(paging)", pagingResult == nil, pagingResult?.name ?? "")
        var unused: UInt32 = 0
        let unknownParent = hwptAllocPaging(iommufd, deviceID: deviceID, ioas: 4242, id: &unused)
        report.expect("IOMMU_HWPT_ALLOC over an unknown pt_id is EINVAL", unknownParent == .EINVAL, unknownParent?.name ?? "ok")
        if pagingResult == nil {
            report.expect("attach to HWPT \(paging) replaces HWPT \(automatic)", try iommufd.attach(cdev, to: paging) == paging)
            report.expect("edu DMA round trip again after the replace (→ 0x102000)",
                          try edu.roundTrip(memory: memory, iova: Self.memoryIOVA, seed: 0xa5, back: 0x2000), edu.lastProblem)
            report.expectErrno("IOMMU_DESTROY of the replaced automatic HWPT \(automatic) is ENOENT", .ENOENT) { try iommufd.destroy(automatic) }
            report.expectErrno("IOMMU_DESTROY of the attached HWPT is EBUSY", .EBUSY) { try iommufd.destroy(paging) }
            report.expectErrno("a VT-d stage-1 on a parent that is not a nesting parent is EINVAL", .EINVAL) {
                _ = try iommufd.allocateStage1(deviceID: deviceID, parent: paging, pageTable: 0x1000, addressWidth: 48, flags: 0, forPASID: false)
            }
            report.expectErrno("IOMMU_HWPT_ALLOC with IOMMU_HWPT_ALLOC_PASID is EOPNOTSUPP: 6.12 has no PASID-capable HWPT", .EOPNOTSUPP) {
                _ = try iommufd.allocateStage1(deviceID: deviceID, parent: paging, pageTable: 0x1000, addressWidth: 48, flags: 0, forPASID: true)
            }
        }
        let target = pagingResult == nil ? paging : ioas
        report.expectErrno("VFIO_DEVICE_ATTACH_IOMMUFD_PT with ATTACH_PASID (pasid 1) is EINVAL: 6.12 attaches device-wide only", .EINVAL) {
            try iommufd.attach(cdev, to: target, pasid: 1)
        }
        report.expectErrno("IOMMU_DESTROY of the IOAS while a device uses it is EBUSY", .EBUSY) { try iommufd.destroy(ioas) }

        try iommufd.detach(cdev)
        report.expect("VFIO_DEVICE_DETACH_IOMMUFD_PT", true)
        report.expect("VFIO_DEVICE_DETACH_IOMMUFD_PT when not attached is a no-op", (try? iommufd.detach(cdev)) != nil)
        if pagingResult == nil {
            try iommufd.destroy(paging)
            report.expect("IOMMU_DESTROY of HWPT \(paging) after detach", true)
        } else {
            report.expectErrno("the automatic HWPT is gone with the detach (ENOENT)", .ENOENT) { try iommufd.destroy(automatic) }
        }
        report.expect("IOMMU_IOAS_UNMAP returns 2 MiB", try iommufd.unmap(ioas: ioas, iova: Self.memoryIOVA, length: Self.memorySize) == Self.memorySize)
        report.expectErrno("IOMMU_IOAS_UNMAP of a never-mapped range is ENOENT", .ENOENT) {
            try iommufd.unmap(ioas: ioas, iova: Self.memoryIOVA, length: Self.memorySize)
        }
        try iommufd.destroy(ioas)
        report.expect("IOMMU_DESTROY of the IOAS", true)
        report.expectErrno("IOMMU_DESTROY of it again is ENOENT", .ENOENT) { try iommufd.destroy(ioas) }
        cdev.close()
        iommufd.close()

        try binder.restore(device, to: original)
        report.expect("restored to \(original ?? "no driver")", try inventory.driver(of: device) == original)
    }

    /// `IOMMU_GET_HW_INFO`'s size rules (extensible structs): too short, the minimum, and
    /// non-zero bytes past what the kernel knows.
    private func checkHardwareInfoSizes(_ report: Report, _ iommufd: IOMMUFD, deviceID: UInt32) {
        func call(size: UInt32, flags: UInt32 = 0, device: UInt32 = deviceID, trailing: UInt8 = 0) -> Errno? {
            var bytes = [UInt8](repeating: 0, count: 64)
            let result = bytes.withUnsafeMutableBytes { buffer in
                let raw = RawBytes(buffer.baseAddress!)
                raw.set(0, u32: size)
                raw.set(4, u32: flags)
                raw.set(8, u32: device)
                if size > 40 { raw.set(Int(size) - 1, u8: trailing) }
                return iommufd.syscalls.ioctl(iommufd.fd, .getHWInfo, buffer.baseAddress!)
            }
            return result < 0 ? Errno(-result) : nil
        }
        func expect(_ name: String, _ errno: Errno?, _ result: Errno?) {
            report.expect("\(name) is \(errno?.name ?? "ok")", result == errno, "got \(result?.name ?? "ok")")
        }
        expect("GET_HW_INFO with size 31", .EINVAL, call(size: 31))
        expect("GET_HW_INFO with size 32 (up to __reserved)", nil, call(size: 32))
        expect("GET_HW_INFO with size 48, zero tail", nil, call(size: 48))
        expect("GET_HW_INFO with size 48, a non-zero byte past the struct", .E2BIG, call(size: 48, trailing: 1))
        expect("GET_HW_INFO with an unknown flag", .EOPNOTSUPP, call(size: 40, flags: 1 << 31))
        expect("GET_HW_INFO of an unknown device id", .ENOENT, call(size: 40, device: 4242))
    }

    /// `IOMMU_HWPT_ALLOC` without flags or data over an IOAS: a plain paging HWPT. nil or the errno.
    private func hwptAllocPaging(_ iommufd: IOMMUFD, deviceID: UInt32, ioas: UInt32, id: inout UInt32) -> Errno? {
        var alloc = iommu_hwpt_alloc()
        alloc.size = UInt32(MemoryLayout<iommu_hwpt_alloc>.size)
        alloc.dev_id = deviceID
        alloc.pt_id = ioas
        let result = withUnsafeMutableBytes(of: &alloc) { iommufd.syscalls.ioctl(iommufd.fd, .hwptAlloc, $0.baseAddress!) }
        guard result >= 0 else { return Errno(-result) }
        id = alloc.out_hwpt_id
        return nil
    }
}

/// QEMU's `edu` device driven through a VFIO device fd: BAR0's DMA engine (source 0x80,
/// destination 0x88, count 0x90, command 0x98: bit 0 start, bit 1 edu→RAM), its 4 KiB buffer
/// at device address 0x40000, a 28-bit DMA mask. Registers are read and written with
/// pread/pwrite at the region offsets VFIO_DEVICE_GET_REGION_INFO gives.
final class EduDMA {
    let fd: Int32
    let bar0: Int64
    let busMaster: Bool
    private(set) var lastProblem = ""
    static let buffer: UInt64 = 0x40000
    static let length = 2048   // QEMU 7.2's edu aborts on a 4096-byte transfer

    init(device: VFIODevice) throws {
        fd = device.fd
        func region(_ index: UInt32) throws -> vfio_region_info {
            var info = vfio_region_info()
            info.argsz = UInt32(MemoryLayout<vfio_region_info>.size)
            info.index = index
            let request = IoctlRequest("VFIO_DEVICE_GET_REGION_INFO", bindery_req_VFIO_DEVICE_GET_REGION_INFO())
            let result = withUnsafeMutableBytes(of: &info) { device.syscalls.ioctl(device.fd, request, $0.baseAddress!) }
            guard result >= 0 else { throw ValidationError("VFIO_DEVICE_GET_REGION_INFO(\(index)): \(Errno(-result).name)") }
            return info
        }
        bar0 = Int64(try region(UInt32(VFIO_PCI_BAR0_REGION_INDEX)).offset)
        let config = Int64(try region(UInt32(VFIO_PCI_CONFIG_REGION_INDEX)).offset)
        var command: UInt16 = 0
        guard pread(fd, &command, 2, off_t(config + 4)) == 2 else { throw ValidationError("reading the PCI command register: \(Errno(errno).name)") }
        command |= 0x6   // memory space, bus master
        guard pwrite(fd, &command, 2, off_t(config + 4)) == 2 else { throw ValidationError("writing the PCI command register: \(Errno(errno).name)") }
        var readBack: UInt16 = 0
        busMaster = pread(fd, &readBack, 2, off_t(config + 4)) == 2 && readBack & 0x4 != 0
    }

    private func write(_ register: Int64, _ value: UInt64) throws {
        var value = value
        guard pwrite(fd, &value, 8, off_t(bar0 + register)) == 8 else { throw ValidationError("edu write 0x\(String(register, radix: 16)): \(Errno(errno).name)") }
    }

    private func read(_ register: Int64) throws -> UInt64 {
        var value: UInt64 = 0
        guard pread(fd, &value, 8, off_t(bar0 + register)) == 8 else { throw ValidationError("edu read 0x\(String(register, radix: 16)): \(Errno(errno).name)") }
        return value
    }

    /// One DMA transfer; waits for the engine to clear its start bit (edu completes on a timer).
    private func transfer(source: UInt64, destination: UInt64, toRAM: Bool) throws -> Bool {
        try write(0x80, source)
        try write(0x88, destination)
        try write(0x90, UInt64(Self.length))
        try write(0x98, toRAM ? 0x3 : 0x1)
        for _ in 0..<3000 {   // a state to wait for; the bound only stops a dead device hanging the check
            if try read(0x98) & 1 == 0 { return true }
            usleep(10_000)
        }
        lastProblem = "the DMA engine never finished"
        return false
    }

    /// Writes a pattern at `iova`'s page, has edu copy it in and back out to `iova + back`,
    /// and compares.
    func roundTrip(memory: UnsafeMutableRawPointer, iova: UInt64, seed: UInt8, back: UInt64 = 0x1000) throws -> Bool {
        let pattern = (0..<Self.length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
        pattern.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: Self.length) }
        memset(memory + Int(back), 0, Self.length)
        guard try transfer(source: iova, destination: Self.buffer, toRAM: false),
              try transfer(source: Self.buffer, destination: iova + back, toRAM: true) else { return false }
        let copied = [UInt8](UnsafeRawBufferPointer(start: memory + Int(back), count: Self.length))
        if copied != pattern {
            lastProblem = "copied bytes differ: first 8 are \(copied.prefix(8).map { String($0, radix: 16) })"
            return false
        }
        return true
    }
}
