import Foundation
import XCTest

/// A caller with a valid admin certificate is still untrusted: no request crashes the daemon,
/// guest memory comes only from the memory directories, and every answer speaks plainly.
final class HostileInputEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    private func vmBody(_ name: String, memory: String) -> String { #"{"name":"\#(name)","memory":[\#(memory)]}"# }

    private func assertAlive(_ file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try curl("/healthz").status, 200, "the daemon is still serving", file: file, line: line)
    }

    func testExtremeIntegersAreRefusedAndTheDaemonLives() throws {
        try startServer()
        for memory in [#"{"guestAddress":"0xfffffffffffff000","size":8192}"#,
                       #"{"guestAddress":"0x1000","size":9223372036854771712}"#,
                       #"{"guestAddress":"0x0","size":4096},{"guestAddress":"0xfffffffffffff000","size":4096}"#,
                       #"{"guestAddress":"0x0","size":18446744073709551615}"#,
                       #"{"guestAddress":"0x0","size":4096,"backing":{"path":"x","offset":9223372036854775807}}"#] {
            let answer = try curl("/v1/vms", method: "POST", body: vmBody("wrap", memory: memory))
            XCTAssertEqual(answer.status, 422, "\(memory): \(answer.body)")
            try assertAlive()
        }
        let vm = try json(try curl("/v1/vms", method: "POST", body: vmBody("ok", memory: #"{"guestAddress":"0x0","size":1073741824}"#)).body)["id"] as! String
        XCTAssertEqual(try curl("/v1/vms/\(vm)/devices/0000:3b:00.0", method: "PUT", body: "{}").status, 202)
        for address in ["0xfffffffffffff000", "0xffffffffffffffff", "0x7ffffffffffff000"] {
            let binding = #"{"vm":"\#(vm)","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":5,"format":"intel-vtd","version":1,"pageTable":{"address":"\#(address)","addressWidth":48}}"#
            let answer = try curl("/v1/bindings", method: "POST", body: binding)
            XCTAssertEqual(answer.status, 422, "\(address): \(answer.body)")
            try assertAlive()
        }
    }

    func testGuestMemoryComesOnlyFromTheMemoryDirectories() throws {
        try startServer()
        let memory = directory + "/memory"
        XCTAssertTrue(FileManager.default.createFile(atPath: memory + "/guest.img", contents: Data(count: 1 << 20)))
        XCTAssertEqual(symlink("/etc/passwd", memory + "/link.img"), 0)
        let cases: [(String, String)] = [("/etc/shadow", "memory-directory"), ("/dev/mem", "memory-directory"),
                                          ("/proc/self/mem", "memory-directory"), (memory + "/../bindery.sqlite", "normalized-path"),
                                          (memory + "/link.img", "no-symlinks"), (memory + "/missing.img", "backing-file")]
        for (path, rule) in cases {
            let answer = try curl("/v1/vms", method: "POST",
                                  body: vmBody("m", memory: #"{"guestAddress":"0x0","size":4096,"backing":{"path":"\#(path)"}}"#))
            XCTAssertEqual(answer.status, 422, "\(path): \(answer.body)")
            XCTAssertTrue(answer.body.contains("/memory/0/backing/path") && answer.body.contains("rule: \(rule)"), "\(path): \(answer.body)")
        }
        let tooLarge = try curl("/v1/vms", method: "POST",
                                body: vmBody("big", memory: #"{"guestAddress":"0x0","size":2097152,"backing":{"path":"\#(memory)/guest.img"}}"#))
        XCTAssertTrue(tooLarge.body.contains("rule: file-size"), tooLarge.body)
        let accepted = try curl("/v1/vms", method: "POST",
                                body: vmBody("backed", memory: #"{"guestAddress":"0x0","size":1048576,"backing":{"path":"\#(memory)/guest.img"}}"#))
        XCTAssertEqual(accepted.status, 201, accepted.body)
        let id = try json(accepted.body)["id"] as! String
        let deadline = Date().addingTimeInterval(20)
        while (try json(try curl("/v1/vms/\(id)").body)["status"] as? [String: Any])?["phase"] as? String != "Ready" {
            if Date() > deadline { return XCTFail("the backed VM never became Ready: \(try curl("/v1/vms/\(id)").body)") }
            usleep(20_000)
        }
    }

    func testProblemsSpeakToTheClient() throws {
        try startServer()
        for body in ["{", #"{"name":1}"#, #"{"name":"a","name":"b"}"#, #"{"name":"a","memory":[{"guestAddress":"0x0","size":"4096"}]}"#] {
            let answer = try curl("/v1/vms", method: "POST", body: body)
            XCTAssertTrue([400, 422].contains(answer.status), "\(body): \(answer.status)")
            for leak in ["DecodingError", "Swift.", "codingPath", "/work/", ".swift", "typeMismatch"] {
                XCTAssertFalse(answer.body.contains(leak), "\(body) leaks \(leak): \(answer.body)")
            }
        }
        let typed = try json(try curl("/v1/vms", method: "POST", body: #"{"name":"a","memory":[{"guestAddress":"0x0","size":"4096"}]}"#).body)
        XCTAssertEqual((typed["errors"] as? [[String: String]])?.first?["pointer"], "/memory/0/size")
        XCTAssertEqual((typed["errors"] as? [[String: String]])?.first?["detail"], "must be an integer")
        let many = (0..<20_000).map { "{\"guestAddress\":\"0x\(String($0 * 4096, radix: 16))\",\"size\":4096}" }.joined(separator: ",")
        let flood = try curl("/v1/vms", method: "POST", body: vmBody("many", memory: many))
        XCTAssertEqual(flood.status, 422)
        XCTAssertTrue(flood.body.contains("at most 64 items"), flood.body)
        let wrongMethod = try curl("/v1/host", method: "DELETE")
        XCTAssertEqual(wrongMethod.status, 405)
        XCTAssertTrue(wrongMethod.headers.contains("Allow: GET, HEAD"), wrongMethod.headers)
    }
}

/// The device policy over the API: visible per device, applied on assignment.
final class DevicePolicyEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    func testTheHostsOwnDevicesAreVisibleAsUnassignableAndRefused() throws {
        try startServer()
        let items = try json(try curl("/v1/devices").body)["items"] as? [[String: Any]] ?? []
        let byAddress = Dictionary(uniqueKeysWithValues: items.map { ($0["address"] as! String, $0) })
        XCTAssertEqual(byAddress["0000:01:00.0"]?["assignable"] as? Bool, false)
        XCTAssertEqual((byAddress["0000:01:00.0"]?["notAssignable"] as? [String: Any])?["rule"] as? String, "in-use")
        XCTAssertEqual((byAddress["0000:02:00.0"]?["notAssignable"] as? [String: Any])?["rule"] as? String, "in-use")
        XCTAssertEqual(byAddress["0000:3b:00.0"]?["assignable"] as? Bool, true)
        let assignable = try json(try curl("/v1/devices?assignable=true").body)["items"] as? [[String: Any]] ?? []
        XCTAssertFalse(assignable.contains { ["0000:01:00.0", "0000:02:00.0"].contains($0["address"] as? String) })

        let vm = try json(try curl("/v1/vms", method: "POST", body: #"{"name":"greedy"}"#).body)["id"] as! String
        for address in ["0000:01:00.0", "0000:02:00.0"] {
            let refused = try curl("/v1/vms/\(vm)/devices/\(address)", method: "PUT", body: #"{"managed":true}"#)
            XCTAssertEqual(refused.status, 422, refused.body)
            XCTAssertEqual(try json(refused.body)["type"] as? String, "https://bindery.dev/problems/device-policy")
            XCTAssertTrue(refused.body.contains("in-use"), refused.body)
        }
        XCTAssertEqual(try curl("/v1/vms/\(vm)/devices/0000:3b:00.0", method: "PUT", body: "{}").status, 202)
    }
}
