extension IOMMUFDVMContext {
    /// Descriptors to keep in the service manager's fd store: the iommufd and each device's
    /// cdev (`iommufd`, `cdev.<address with - for :>`). The object ids inside the iommufd are
    /// not descriptors: `objectIDs` says them, for the caller to keep beside.
    public var keptDescriptors: [String: Int32] {
        guard space != nil else { return [:] }   // nothing in the kernel worth keeping yet
        var kept = ["iommufd": iommufd.fd]
        for (address, device) in devices where device.cdev.fd >= 0 {
            kept[DescriptorName.make("cdev", device: address)] = device.cdev.fd
        }
        return kept
    }

    /// The iommufd objects an adoption needs (the kernel has no call that lists them): `ioas`,
    /// `parent`, `device.<address>` (its id) and `stage1.<address>.<pasid>` (its HWPT).
    public var objectIDs: [String: UInt32] {
        guard let space else { return [:] }
        var ids = ["ioas": space.ioas, "parent": space.parent]
        for (address, device) in devices { ids["device.\(address)"] = device.id }
        for (address, tables) in stage1 {
            for (pasid, hwpt) in tables { ids["stage1.\(address).\(pasid)"] = hwpt }
        }
        return ids
    }

    /// A context over an iommufd and cdevs a previous process kept (`keptDescriptors`' names)
    /// with the object ids it recorded (`objectIDs`). Each cdev must answer
    /// `VFIO_DEVICE_GET_INFO` (only a bound cdev does) and its recorded id `IOMMU_GET_HW_INFO`
    /// on the adopted iommufd (ENOENT for a stale id). Nothing is set up again: the IOAS with
    /// guest memory, the nesting parent and every stage-1 stay as they are. When a check
    /// fails, every descriptor given is closed.
    public static func adopting(_ descriptors: [String: Int32], objectIDs: [String: UInt32], syscalls: any Syscalls,
                                inventory: SysfsInventory, memory: [GuestMemoryRegion]) throws(KernelError) -> IOMMUFDVMContext {
        var context: IOMMUFDVMContext?
        var consumed: Set<Int32> = []
        do throws(KernelError) {
            guard let fd = descriptors["iommufd"] else {
                throw .unexpected(call: "adopt", detail: "no iommufd among the kept descriptors \(descriptors.keys.sorted())")
            }
            guard let ioas = objectIDs["ioas"], let parent = objectIDs["parent"] else {
                throw .unexpected(call: "adopt", detail: "the IOAS and nesting parent of the kept iommufd were not recorded")
            }
            consumed.insert(fd)
            let adopted = try IOMMUFDVMContext(syscalls: syscalls, inventory: inventory, memory: memory,
                                               iommufd: IOMMUFD(adopting: fd, syscalls: syscalls))
            context = adopted
            for (name, cdevFD) in descriptors {
                guard let address = DescriptorName.device(in: name, kind: "cdev") else { continue }
                let cdev = VFIODevice(address: address, fd: cdevFD, syscalls: syscalls)
                consumed.insert(cdevFD)
                guard let id = objectIDs["device.\(address)"] else {
                    cdev.close()
                    throw .unexpected(call: "adopt", detail: "no iommufd device id recorded for \(address)")
                }
                do throws(KernelError) {
                    _ = try cdev.info()
                    let info = try adopted.iommufd.hardwareInfo(deviceID: id)
                    adopted.devices[address] = Device(cdev: cdev, id: id, pasidBits: Int(info.maxPASIDLog2),
                                                      nesting: info.extendedCapabilityRegister & (1 << 26) != 0)
                } catch {
                    cdev.close()
                    throw error
                }
            }
            guard let first = adopted.devices.keys.sorted().first, let firstDevice = adopted.devices[first] else {
                throw .unexpected(call: "adopt", detail: "no device kept with the iommufd")
            }
            adopted.space = IOMMUFD.NestingSpace(deviceID: firstDevice.id, ioas: ioas, parent: parent)
            for (name, hwpt) in objectIDs where name.hasPrefix("stage1.") {
                let parts = name.dropFirst("stage1.".count).split(separator: ".")
                guard parts.count >= 2, let pasid = UInt32(parts.last!) else { continue }
                let address = parts.dropLast().joined(separator: ".")
                guard adopted.devices[address] != nil else { continue }
                adopted.stage1[address, default: [:]][pasid] = hwpt
                adopted.pasids[address, default: []].insert(pasid)
            }
            return adopted
        } catch {
            context?.close()
            for fd in descriptors.values where !consumed.contains(fd) { _ = syscalls.close(fd) }
            throw error
        }
    }
}
