import Foundation
import XCTest

/// A fresh directory under the system temp dir, removed when the test ends.
func makeScratchDirectory(_ test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let path = NSTemporaryDirectory() + "bindery-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// The path of an executable built alongside the tests (`swift build` puts products beside the test bundle).
func builtProduct(_ name: String) throws -> String {
    var candidates: [String] = []
    if let directory = ProcessInfo.processInfo.environment["BINDERY_BUILD_DIR"] {
        candidates.append(directory)
    }
    let bundle = Bundle.main.bundleURL
    candidates += [bundle.path, bundle.deletingLastPathComponent().path,
                   URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path]
    for directory in candidates {
        let path = (directory as NSString).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw NSError(domain: "bindery-tests", code: 1, userInfo: [NSLocalizedDescriptionKey:
        "built product \(name) not found in \(candidates); run `swift build` before `swift test`"])
}
