/// Which PCI devices may be assigned to VMs (and rebound to vfio-pci for them). The host's own
/// devices must never be taken: by default, devices of the classes the host lives on
/// (storage, display, bridges) are refused, and so is any device whose driver backs something
/// in use (a network interface that is up, a block device). An operator can instead list the
/// assignable devices by address, vendor:device or class; a listed device of a protected class
/// becomes assignable, a device in use never does.
public struct DevicePolicy: Sendable, Equatable {
    /// One entry of the allow list.
    public enum Rule: Sendable, Equatable, CustomStringConvertible {
        /// `0000:3b:00.0`.
        case address(String)
        /// `8086:0b25`.
        case vendorDevice(UInt16, UInt16)
        /// `class:0x01` (base class), `class:0x0108` (subclass) or `class:0x010802` (with prog-if).
        case classCode(UInt32, digits: Int)

        /// Whether `device` matches.
        func matches(_ device: PCIDevice) -> Bool {
            switch self {
            case let .address(address): return device.address == address
            case let .vendorDevice(vendor, id): return device.vendorID == vendor && device.deviceID == id
            case let .classCode(value, digits): return device.classCode >> UInt32(4 * (6 - digits)) == value
            }
        }

        public var description: String {
            switch self {
            case let .address(address): return address
            case let .vendorDevice(vendor, id): return hex(UInt32(vendor), 4) + ":" + hex(UInt32(id), 4)
            case let .classCode(value, digits): return "class:0x" + hex(value, digits)
            }
        }

        private func hex(_ value: UInt32, _ digits: Int) -> String {
            let raw = String(value, radix: 16)
            return String(repeating: "0", count: max(0, digits - raw.count)) + raw
        }

        /// Parses an allow-list entry.
        public init(parsing text: String) throws(DevicePolicyError) {
            let lower = text.lowercased()
            if lower.hasPrefix("class:0x") {
                let digits = lower.dropFirst("class:0x".count)
                guard [2, 4, 6].contains(digits.count), let value = UInt32(digits, radix: 16), digits.allSatisfy(\.isHexDigit) else {
                    throw DevicePolicyError(entry: text, reason: "a class is class:0x followed by 2, 4 or 6 hex digits")
                }
                self = .classCode(value, digits: digits.count)
                return
            }
            let parts = lower.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2, parts.allSatisfy({ $0.count == 4 && $0.allSatisfy(\.isHexDigit) }),
               let vendor = UInt16(parts[0], radix: 16), let id = UInt16(parts[1], radix: 16) {
                self = .vendorDevice(vendor, id)
                return
            }
            if PCIAddress.isValid(lower) {
                self = .address(lower)
                return
            }
            throw DevicePolicyError(entry: text, reason: "expected an address (0000:3b:00.0), vendor:device (8086:0b25) or class:0x…")
        }
    }

    /// Why a device may not be assigned: the rule and a sentence.
    public struct Refusal: Sendable, Equatable, CustomStringConvertible {
        /// `in-use`, `host-class`, `not-allowed` or `no-iommu-group`.
        public var rule: String
        /// A plain sentence naming the device and what to change.
        public var reason: String
        /// `rule: reason`.
        public var description: String { "\(rule): \(reason)" }
    }

    /// Base classes the host lives on, refused unless allowed by the list.
    public static let protectedClasses: [UInt32: String] = [0x01: "storage", 0x03: "display", 0x06: "bridge"]

    /// The allow list (empty: every device not protected and not in use).
    public var allow: [Rule]

    /// A policy from its allow list.
    public init(allow: [Rule] = []) { self.allow = allow }

    /// A policy from allow-list entries as written in the config.
    public init(parsing entries: [String]) throws(DevicePolicyError) {
        allow = try entries.map { (entry) throws(DevicePolicyError) in try Rule(parsing: entry) }
    }

    /// Nil when `device` may be assigned; otherwise why not. `hostUse` is what the device's
    /// driver backs on the host now (`SysfsInventory.hostUse(of:)`).
    public func refusal(for device: PCIDevice, hostUse: [String]) -> Refusal? {
        if device.iommuGroup == nil {
            return Refusal(rule: "no-iommu-group", reason: "\(device.address) is in no IOMMU group: no IOMMU would confine its DMA")
        }
        if !hostUse.isEmpty, device.driver != DriverBinder.vfioDriver {
            return Refusal(rule: "in-use", reason: "\(device.address)'s driver \(device.driver ?? "?") backs \(hostUse.joined(separator: ", ")) on the host")
        }
        if !allow.isEmpty {
            if allow.contains(where: { $0.matches(device) }) { return nil }
            return Refusal(rule: "not-allowed", reason: "\(device.address) matches no entry of the device policy's allow list (\(allow.map(\.description).joined(separator: ", ")))")
        }
        if let name = Self.protectedClasses[device.classCode >> 16] {
            let code = String(device.classCode, radix: 16)
            return Refusal(rule: "host-class", reason: "\(device.address) is a \(name) device (class 0x\(String(repeating: "0", count: max(0, 6 - code.count)) + code)), kept for the host; list it in the device policy's allow list to assign it")
        }
        return nil
    }
}

/// An allow-list entry that does not parse.
public struct DevicePolicyError: Error, Sendable, CustomStringConvertible {
    /// The entry as written.
    public let entry: String
    /// What is wrong.
    public let reason: String
    /// `device policy entry X: reason`.
    public var description: String { "device policy entry \(entry): \(reason)" }
}

/// PCI address syntax.
enum PCIAddress {
    /// `dddd:bb:dd.f` in lowercase hex.
    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 12, bytes[4] == UInt8(ascii: ":"), bytes[7] == UInt8(ascii: ":"), bytes[10] == UInt8(ascii: ".") else { return false }
        let hex = Set("0123456789abcdef".utf8)
        return [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy { hex.contains(bytes[$0]) } && (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[11])
    }
}
