@testable import BinderyAPI
import BinderyStore
import XCTest

/// The request validators driven directly with extreme and random integers: none may trap,
/// and whatever they accept must satisfy the rules they state.
final class ValidatorPropertyTests: XCTestCase {
    /// Integers at and around every boundary the rules use, plus the type's ends.
    private static let extremes: [Int64] = {
        var values: [Int64] = [0, 1, -1, 4095, 4096, 4097, 8192, Int64.max, Int64.min, Int64.max - 4095, Int64.max - 4096]
        for shift in [12, 32, 56, 57, 58, 62] {
            let power = Int64(1) << shift
            values += [power - 4096, power - 1, power, power + 4096]
        }
        return values
    }()

    private static let addresses: [String] = {
        var values = ["0x0", "0x1000", "0xfff", "0xffffffffffffffff", "0xfffffffffffff000", "0x1ffffffffffff000", "0x200000000000000",
                      "0x1fffffffffff000", "0x7ffffffffffff000", "0x", "0x10000000000000000", "1000", "-0x1000", "0xg"]
        for shift in [12, 32, 48, 56, 57, 63] { values.append("0x" + String(UInt64(1) << UInt64(shift), radix: 16)) }
        return values
    }()

    func testMemoryRegionRulesNeverTrapAndAcceptOnlyWhatTheyState() {
        var generator = SplitMix64(seed: 0xB1DE_5EED)
        for round in 0..<20_000 {
            let count = Int(generator.next() % 4) + 1
            let inputs = (0..<count).map { _ in
                GuestMemoryRules.Input(
                    guestAddress: round % 2 == 0 ? Self.addresses.randomElement(using: &generator)!
                        : "0x" + String(generator.next() & ~0xfff, radix: 16),
                    size: Self.extremes.randomElement(using: &generator)!,
                    backingPath: generator.next() % 2 == 0 ? "guest.img" : nil,
                    backingOffset: generator.next() % 3 == 0 ? nil : Self.extremes.randomElement(using: &generator)!)
            }
            var validation = Validation()
            let accepted = GuestMemoryRules.check(inputs, into: &validation)
            XCTAssertEqual(accepted.count + Set(validation.errors.map { $0.pointer.split(separator: "/").prefix(2).joined() }).count,
                           inputs.count, "each region is accepted or named in a problem")
            for region in accepted {
                XCTAssertEqual(region.guestAddress % 4096, 0)
                XCTAssertTrue(region.size >= 4096 && region.size % 4096 == 0)
                XCTAssertTrue(region.size <= GuestMemoryRules.addressLimit && region.guestAddress <= GuestMemoryRules.addressLimit - region.size)
                XCTAssertTrue(region.backingOffset <= UInt64(Int64.max) - region.size)
            }
            for (i, a) in accepted.enumerated() {
                for b in accepted[(i + 1)...] {
                    XCTAssertTrue(a.guestAddress + a.size <= b.guestAddress || b.guestAddress + b.size <= a.guestAddress, "no overlaps")
                }
            }
        }
    }

    func testPageContainmentNeverTrapsAndMatchesWideArithmetic() {
        var generator = SplitMix64(seed: 42)
        let regions = [MemoryRegion(guestAddress: 0, size: 1 << 30), MemoryRegion(guestAddress: (1 << 57) - (1 << 20), size: 1 << 20),
                       MemoryRegion(guestAddress: 1 << 40, size: 4096)]
        var pages: [UInt64] = [0, 4096, UInt64.max, UInt64.max - 4095, UInt64.max & ~0xfff, (1 << 57) - 4096, 1 << 57, 1 << 40, (1 << 40) + 4096, (1 << 30) - 4096, 1 << 30]
        for _ in 0..<50_000 { pages.append(generator.next() & ~0xfff) }
        for page in pages {
            let expected = regions.contains { region in
                // The same rule in 128-bit arithmetic, where nothing can overflow.
                let (start, end) = (UInt128(region.guestAddress), UInt128(region.guestAddress) + UInt128(region.size))
                return UInt128(page) >= start && UInt128(page) + 4096 <= end
            }
            XCTAssertEqual(GuestMemoryRules.contains(regions, page: page), expected, "page 0x\(String(page, radix: 16))")
        }
    }

    func testHexAddressesOfAnyLengthParseOrRefuse() {
        XCTAssertEqual(Validation.hex("0xffffffffffffffff"), UInt64.max)
        XCTAssertNil(Validation.hex("0x10000000000000000"), "17 digits do not fit")
        XCTAssertNil(Validation.hex("0x"))
        XCTAssertNil(Validation.hex("0x-1"))
        XCTAssertNil(Validation.hex("0x+1"))
        XCTAssertNil(Validation.hex("ff"))
    }
}

/// A small deterministic generator, so a failure replays.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
