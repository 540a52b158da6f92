import Foundation

/// Faults the simulated kernel injects: make call X return errno Y at a rate, after N
/// successes, N times, always, or by a script of outcomes. Calls are named as in errors:
/// an ioctl (`VFIO_IOMMU_NESTING_OP`), `open`, `mmap`, or a sysfs access by operation and
/// file name (`write drivers_probe`, `read config`, `readlink driver`, `list devices`).
public final class FaultPlan: @unchecked Sendable {
    /// When a rule fires.
    public enum Trigger: Sendable, Equatable {
        /// Every call.
        case always
        /// Each call with this probability (0…1), from a seeded generator.
        case rate(Double)
        /// Every call after the first N succeed.
        case afterSuccesses(Int)
        /// The first N calls.
        case times(Int)
        /// Call by call: nil lets the call through; past the end, calls go through.
        case script([Errno?])
    }

    /// One rule.
    public struct Rule: Sendable, Equatable {
        /// The call it applies to (`*` for every call).
        public var call: String
        /// The errno to return (ignored for `.script`).
        public var errno: Errno
        /// When.
        public var trigger: Trigger

        /// A rule from its parts.
        public init(call: String, errno: Errno, trigger: Trigger) {
            self.call = call
            self.errno = errno
            self.trigger = trigger
        }
    }

    private let lock = NSLock()
    private var rules: [Rule]
    private var seen: [Int] = []
    private var random: UInt64
    private var injectedCounts: [String: Int] = [:]
    private var recorded: [String]?

    /// A plan of `rules`; `seed` makes `.rate` rules repeatable.
    public init(_ rules: [Rule] = [], seed: UInt64 = 0x5eed) {
        self.rules = rules
        seen = Array(repeating: 0, count: rules.count)
        random = seed
    }

    /// Parses `CALL=ERRNO[@rate:P|@after:N|@times:N]` or `CALL=script:ok,EBUSY,...`, rules
    /// separated by `;`. Example: `VFIO_IOMMU_NESTING_OP=EBUSY@rate:0.1;open=ENOENT@times:1`.
    public convenience init(parsing text: String, seed: UInt64 = 0x5eed) throws {
        var rules: [Rule] = []
        for part in text.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
            guard let equals = part.firstIndex(of: "=") else { throw FaultPlanError(rule: part, reason: "expected CALL=ERRNO") }
            let call = String(part[..<equals]), action = String(part[part.index(after: equals)...])
            if action.hasPrefix("script:") {
                var steps: [Errno?] = []
                for step in action.dropFirst(7).split(separator: ",") {
                    if step == "ok" { steps.append(nil); continue }
                    guard let errno = Errno(name: String(step)) else { throw FaultPlanError(rule: part, reason: "unknown errno \(step)") }
                    steps.append(errno)
                }
                rules.append(Rule(call: call, errno: .EIO, trigger: .script(steps)))
                continue
            }
            let pieces = action.split(separator: "@", maxSplits: 1).map(String.init)
            guard let errno = Errno(name: pieces[0]) else { throw FaultPlanError(rule: part, reason: "unknown errno \(pieces[0])") }
            var trigger = Trigger.always
            if pieces.count == 2 {
                let kv = pieces[1].split(separator: ":", maxSplits: 1).map(String.init)
                switch (kv.first, kv.count == 2 ? kv[1] : nil) {
                case let ("rate", value?): 
                    guard let p = Double(value), (0...1).contains(p) else { throw FaultPlanError(rule: part, reason: "rate must be 0…1") }
                    trigger = .rate(p)
                case let ("after", value?):
                    guard let n = Int(value), n >= 0 else { throw FaultPlanError(rule: part, reason: "after needs a count") }
                    trigger = .afterSuccesses(n)
                case let ("times", value?):
                    guard let n = Int(value), n >= 0 else { throw FaultPlanError(rule: part, reason: "times needs a count") }
                    trigger = .times(n)
                default: throw FaultPlanError(rule: part, reason: "unknown trigger \(pieces[1])")
                }
            }
            rules.append(Rule(call: call, errno: errno, trigger: trigger))
        }
        self.init(rules, seed: seed)
    }

    /// Adds a rule.
    public func add(_ rule: Rule) {
        lock.withLock {
            rules.append(rule)
            seen.append(0)
        }
    }

    /// Removes every rule.
    public func clear() {
        lock.withLock {
            rules.removeAll()
            seen.removeAll()
        }
    }

    /// Starts recording every call the kernel asks this plan about, i.e. every call a rule
    /// can fail (ioctls, open, mmap, sysfs reads and writes).
    public func startRecording() {
        lock.withLock { recorded = [] }
    }

    /// Stops recording and returns the calls seen since `startRecording`, in order.
    public func stopRecording() -> [String] {
        lock.withLock {
            defer { recorded = nil }
            return recorded ?? []
        }
    }

    /// How many faults were injected, by call.
    public var injected: [String: Int] { lock.withLock { injectedCounts } }

    /// The errno to fail `call` with now, if a rule says so. Counts the call.
    func fault(for call: String) -> Errno? {
        lock.withLock {
            recorded?.append(call)
            for index in rules.indices where rules[index].call == call || rules[index].call == "*" {
                let count = seen[index]
                seen[index] += 1
                let errno: Errno?
                switch rules[index].trigger {
                case .always: errno = rules[index].errno
                case let .rate(p): errno = nextUniform() < p ? rules[index].errno : nil
                case let .afterSuccesses(n): errno = count >= n ? rules[index].errno : nil
                case let .times(n): errno = count < n ? rules[index].errno : nil
                case let .script(steps): errno = count < steps.count ? steps[count] : nil
                }
                if let errno {
                    injectedCounts[call, default: 0] += 1
                    return errno
                }
            }
            return nil
        }
    }

    /// SplitMix64, mapped to [0, 1).
    private func nextUniform() -> Double {
        random &+= 0x9E37_79B9_7F4A_7C15
        var z = random
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}

/// A fault plan that does not parse.
public struct FaultPlanError: Error, CustomStringConvertible {
    /// The rule's text.
    public let rule: String
    /// What is wrong with it.
    public let reason: String
    public var description: String { "fault rule \"\(rule)\": \(reason)" }
}
