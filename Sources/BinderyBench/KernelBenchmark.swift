import ArgumentParser
import BinderyKernel
import CBinderyKernel
import Foundation

/// Bind + unbind operations per second against the simulated kernel, through the executor
/// and as raw ioctls on prebuilt buffers; the difference is the executor's own overhead.
struct KernelBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "Bind+unbind ops/s on the simulated kernel, and the executor's overhead per operation."
    )

    @Option(help: "Bind+unbind pairs per round.")
    var operations = 200_000
    @Option(help: "Rounds (the median is reported).")
    var rounds = 5

    func run() throws {
        let kernel = SimulatedKernel()
        let vm = try VMContext(syscalls: kernel, inventory: SysfsInventory(syscalls: kernel),
                               memory: [GuestMemoryRegion(guestAddress: 0, size: 1 << 30)])
        try vm.attach("0000:3b:00.0")
        let pasid = try vm.allocatePASID()
        let bind = GuestPageTableBind(addressWidth: 48, pageTable: 0x1000, hostPASID: UInt64(pasid), guestPASID: 1)

        // Raw: the same NESTING_OP bytes, built once, straight into the simulated kernel.
        func buffer(op: Int32) -> KernelBuffer {
            let buffer = KernelBuffer(count: 80)
            buffer.raw.set(0, u32: 80)
            buffer.raw.set(4, u32: UInt32(op))
            var data = bind.cStruct
            withUnsafeBytes(of: &data) { buffer.bytes.baseAddress!.advanced(by: 8).copyMemory(from: $0.baseAddress!, byteCount: 72) }
            return buffer
        }
        let bindBuffer = buffer(op: VFIO_IOMMU_NESTING_OP_BIND_PGTBL), unbindBuffer = buffer(op: VFIO_IOMMU_NESTING_OP_UNBIND_PGTBL)

        var executorNs: [Double] = [], rawNs: [Double] = []
        for _ in 0..<rounds {
            var start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<operations {
                try vm.bind(bind)
                try vm.unbind(bind)
            }
            executorNs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(2 * operations))
            start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<operations {
                guard kernel.ioctl(vm.container.fd, .nestingOp, bindBuffer.bytes.baseAddress!) == 0,
                      kernel.ioctl(vm.container.fd, .nestingOp, unbindBuffer.bytes.baseAddress!) == 0 else {
                    throw ValidationError("raw NESTING_OP failed")
                }
            }
            rawNs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / Double(2 * operations))
        }
        let executor = median(executorNs), raw = median(rawNs)
        print("| measure | median | min–max |")
        print("|---|---:|---:|")
        print(String(format: "| executor bind or unbind (µs/op) | %.2f | %.2f–%.2f |", executor / 1000, executorNs.min()! / 1000, executorNs.max()! / 1000))
        print(String(format: "| raw simulated ioctl (µs/op) | %.2f | %.2f–%.2f |", raw / 1000, rawNs.min()! / 1000, rawNs.max()! / 1000))
        print(String(format: "| executor overhead (µs/op) | %.2f | |", (executor - raw) / 1000))
        print(String(format: "| bind+unbind pairs/s through the executor | %.0f | |", 1e9 / (2 * executor)))
    }
}
