@testable import BinderyAPI
import Foundation
import XCTest

/// `SimplePattern` answers as NSRegularExpression does, for the contract's patterns and others.
final class SimplePatternTests: XCTestCase {
    func testAgreesWithNSRegularExpression() throws {
        let patterns = [
            "^vm-[0-9a-f]{32}$", "^bnd-[0-9a-f]{32}$", #"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$"#, "^/", "abc", "b+c?$",
            "^[a-z]*x$", "^a{2,4}b{0,1}$", #"^\-\.[\-x]$"#, "^[A-Za-z_][A-Za-z0-9_]{0,7}$", "x?y*z+",
        ]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefxyzABZ-_.:/vmbnd é😀".unicodeScalars)
        for source in patterns {
            let simple = try XCTUnwrap(SimplePattern(source), source)
            let expression = try NSRegularExpression(pattern: source)
            var samples = ["", "vm-" + String(repeating: "a", count: 32), "bnd-" + String(repeating: "0", count: 32), "0000:3b:00.0",
                           "0000:3b:00.8", "/x", "x/", "aab", "aaaab", "aaaaab", "-.-", "-.x", "zzx", "abc", "xxabcxx", "bc", "bbb",
                           "vm-" + String(repeating: "a", count: 33), "Vm-" + String(repeating: "a", count: 32), "é", "xyz", "q"]
            for _ in 0..<300 {
                var text = ""
                for _ in 0..<Int.random(in: 0...40, using: &generator) { text.unicodeScalars.append(alphabet.randomElement(using: &generator)!) }
                samples.append(text)
            }
            for text in samples {
                let expected = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
                XCTAssertEqual(simple.matches(text), expected, "\(source) on \(text)")
            }
        }
    }

    func testDollarIsTheEndOfTheTextNotBeforeAFinalNewline() throws {
        let pattern = try XCTUnwrap(SimplePattern("^vm-[0-9a-f]{2}$"))
        XCTAssertTrue(pattern.matches("vm-0a"))
        for text in ["vm-0a\n", "vm-0a\r\n", "vm-0a\u{2028}"] { XCTAssertFalse(pattern.matches(text), text) }
    }

    func testGroupsAndAlternationAreNotSimple() {
        for source in ["^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", "a|b", "^0x(0|[0-9a-fA-F]{0,13}000)$", "a.b", "[^a]", #"\d"#, "a*?", #"[!-\~]"#] {
            XCTAssertNil(SimplePattern(source), source)
        }
    }
}
