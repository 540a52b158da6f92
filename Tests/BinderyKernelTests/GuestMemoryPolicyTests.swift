import BinderyKernel
import Foundation
import Glibc
import XCTest

/// Guest memory comes only from beneath the configured directories, through no symlink.
final class GuestMemoryPolicyTests: XCTestCase {
    private var root = ""
    private var memory = ""
    private var policy: GuestMemoryPolicy!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("gm-\(UUID().uuidString)").path
        memory = root + "/memory"
        try FileManager.default.createDirectory(atPath: memory + "/vms", withIntermediateDirectories: true)
        policy = try GuestMemoryPolicy(directories: [memory])
        XCTAssertTrue(FileManager.default.createFile(atPath: memory + "/vms/good.img", contents: Data(count: 8192)))
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/secret", contents: Data(count: 8192)))
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    private func refusal(_ path: String, offset: UInt64 = 0, size: UInt64 = 4096) -> String? {
        do {
            try policy.check(path, offset: offset, size: size)
            return nil
        } catch {
            return error.rule
        }
    }

    func testARegularFileBeneathTheDirectoryIsAccepted() {
        XCTAssertNil(refusal(memory + "/vms/good.img"))
        XCTAssertNil(refusal(memory + "/vms/good.img", offset: 4096, size: 4096))
    }

    func testPathsOutsideOrNotNormalizedAreRefused() {
        XCTAssertEqual(refusal("/etc/shadow"), "memory-directory")
        XCTAssertEqual(refusal("/dev/mem"), "memory-directory")
        XCTAssertEqual(refusal("/proc/self/mem"), "memory-directory")
        XCTAssertEqual(refusal(memory + "/../secret"), "normalized-path")
        XCTAssertEqual(refusal(memory + "/./vms/good.img"), "normalized-path")
        XCTAssertEqual(refusal(memory + "//vms/good.img"), "normalized-path")
        XCTAssertEqual(refusal("vms/good.img"), "normalized-path")
        XCTAssertEqual(refusal(memory), "memory-directory", "the directory itself is no file beneath it")
        XCTAssertEqual(refusal(memory + "x/evil"), "memory-directory", "a sibling whose name starts the same is outside")
    }

    func testSymlinksAnywhereOnThePathAreRefused() throws {
        XCTAssertEqual(symlink(root + "/secret", memory + "/link.img"), 0)
        XCTAssertEqual(refusal(memory + "/link.img"), "no-symlinks")
        XCTAssertEqual(symlink(root, memory + "/escape"), 0)
        XCTAssertEqual(refusal(memory + "/escape/secret"), "no-symlinks")
        XCTAssertEqual(symlink("vms/good.img", memory + "/inside.img"), 0)
        XCTAssertEqual(refusal(memory + "/inside.img"), "no-symlinks", "even a link that stays inside")
    }

    func testOnlyRegularFilesLargeEnoughAreAccepted() {
        XCTAssertEqual(mkfifo(memory + "/fifo", 0o600), 0)
        XCTAssertEqual(refusal(memory + "/fifo"), "regular-file", "opening a FIFO read-write succeeds, so fstat must refuse it")
        XCTAssertEqual(refusal(memory + "/vms"), "backing-file", "a directory cannot be opened read-write (EISDIR)")
        XCTAssertEqual(refusal(memory + "/vms/good.img", size: 16384), "file-size")
        XCTAssertEqual(refusal(memory + "/vms/good.img", offset: 8192, size: 4096), "file-size")
        XCTAssertEqual(refusal(memory + "/vms/good.img", offset: UInt64.max - 4095, size: 4096), "file-size", "no overflow")
        XCTAssertEqual(refusal(memory + "/vms/missing.img"), "backing-file")
    }

    func testTheExecutorOpensBeneathTheDirectoryToo() throws {
        let kernel = SimulatedKernel()
        let region = GuestMemoryRegion(guestAddress: 0, size: 4096, backingPath: memory + "/vms/good.img", backingDirectory: memory)
        XCTAssertNoThrow(try VMContext(syscalls: kernel, inventory: SysfsInventory(syscalls: kernel), memory: [region]).close())
        XCTAssertEqual(symlink(root + "/secret", memory + "/swapped.img"), 0)
        let swapped = GuestMemoryRegion(guestAddress: 0, size: 4096, backingPath: memory + "/swapped.img", backingDirectory: memory)
        XCTAssertThrowsError(try VMContext(syscalls: kernel, inventory: SysfsInventory(syscalls: kernel), memory: [swapped])) { error in
            XCTAssertTrue("\(error)".contains("ELOOP"), "\(error)")
        }
        let unplaced = GuestMemoryRegion(guestAddress: 0, size: 4096, backingPath: root + "/secret")
        XCTAssertThrowsError(try VMContext(syscalls: kernel, inventory: SysfsInventory(syscalls: kernel), memory: [unplaced]),
                             "a backing file with no allowed directory is never opened")
    }
}
