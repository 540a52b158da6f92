@testable import BinderyReconciler
import BinderyKernel
import Foundation
import XCTest

/// `KernelHost.withVM`: one caller per VM at a time, and no lock kept for a VM no one is working on.
final class KernelHostLockTests: XCTestCase {
    func testAVMsLockExcludesOthersAndIsDroppedOnceNoOneWantsIt() {
        let host = KernelHost(syscalls: SimulatedKernel(), sysfsRoot: ReconcilerOptions().sysfsRoot)
        let inside = NSLock()
        nonisolated(unsafe) var holders: [String: Int] = [:]
        nonisolated(unsafe) var overlaps = 0
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<3_000 {
                let vm = "vm-\((round + worker) % 3)"
                host.withVM(vm) {
                    inside.withLock {
                        holders[vm, default: 0] += 1
                        if holders[vm]! > 1 { overlaps += 1 }
                    }
                    if round % 7 == 0 { sched_yield() }
                    inside.withLock { holders[vm]! -= 1 }
                }
            }
        }
        XCTAssertEqual(overlaps, 0, "two callers held one VM's lock at once")
        XCTAssertEqual(host.lockedVMCount, 0, "locks kept for VMs no one works on")
        for index in 0..<1_000 { host.withVM("vm-gone-\(index)") {} }
        XCTAssertEqual(host.lockedVMCount, 0)
    }
}
