import Foundation
import GRDB
import XCTest

/// The whole story and the API's rules, against a real `bindery serve`.
final class StoryEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    private func eventually(_ what: String, _ condition: () throws -> Bool) rethrows {
        let deadline = Date().addingTimeInterval(20)
        while try !condition() {
            if Date() > deadline { return XCTFail("never happened: \(what)") }
            usleep(20_000)
        }
    }

    private func createVM(_ name: String, as caller: String = "admin") throws -> String {
        let created = try curl("/v1/vms", as: caller, method: "POST",
                               body: #"{"name":"\#(name)","labels":{"tenant":"a"},"memory":[{"guestAddress":"0x0","size":1073741824}]}"#)
        XCTAssertEqual(created.status, 201, created.body)
        return try json(created.body)["id"] as? String ?? ""
    }

    private func bindingBody(vm: String, device: String = "0000:3b:00.0", pasid: Int = 5, format: String = "intel-vtd", version: Int = 1,
                             address: String = "0x1000", width: Int = 48, type: String = "guest-page-table", extra: String = "") -> String {
        #"{"vm":"\#(vm)","device":"\#(device)","type":"\#(type)","guestPasid":\#(pasid),"format":"\#(format)","version":\#(version),"pageTable":{"address":"\#(address)","addressWidth":\#(width)},"vtd":{"sre":true}\#(extra)}"#
    }

    func testTheWholeStoryIsBoundThenReplacedThenDeletedAndAudited() throws {
        try startServer()
        let vm = try createVM("story")
        XCTAssertEqual(try curl("/v1/vms/\(vm)/devices/0000:3b:00.0", method: "PUT", body: #"{"managed":true}"#).status, 202)
        let created = try curl("/v1/bindings", method: "POST", body: bindingBody(vm: vm))
        XCTAssertEqual(created.status, 202, created.body)
        XCTAssertTrue(created.headers.contains("Location: /v1/bindings/bnd-"), created.headers)
        XCTAssertTrue(created.headers.contains("ETag: \"1\""), created.headers)
        let id = try json(created.body)["id"] as! String
        var binding: [String: Any] = [:]
        try eventually("the binding is Bound") {
            binding = try json(try curl("/v1/bindings/\(id)").body)
            return (binding["status"] as? [String: Any])?["phase"] as? String == "Bound"
        }
        XCTAssertNotNil((binding["status"] as? [String: Any])?["hostPasid"])
        let version = binding["resourceVersion"] as! Int

        XCTAssertGreaterThan(version, 1, "the reconciler's status updates are changes too")
        let stale = try curl("/v1/bindings/\(id)", method: "PUT", headers: ["If-Match: \"1\""], body: #"{"address":"0x2000","addressWidth":57}"#)
        XCTAssertEqual(stale.status, 412)
        XCTAssertEqual(try json(stale.body)["type"] as? String, "https://bindery.dev/problems/precondition-failed")
        let replaced = try curl("/v1/bindings/\(id)", method: "PUT", headers: ["If-Match: \"\(try json(try curl("/v1/bindings/\(id)").body)["resourceVersion"] as! Int)\""],
                                body: #"{"address":"0x3000","addressWidth":57}"#)
        XCTAssertEqual(replaced.status, 202, replaced.body)
        try eventually("the new table is bound") {
            let now = try json(try curl("/v1/bindings/\(id)").body)
            let status = now["status"] as? [String: Any]
            return status?["phase"] as? String == "Bound" && status?["observedGeneration"] as? Int == now["generation"] as? Int
        }
        XCTAssertEqual(try curl("/v1/bindings/\(id)", method: "DELETE").status, 202)
        XCTAssertEqual(try curl("/v1/bindings/\(id)").status, 404, "a deleted binding is gone for clients at once")
        XCTAssertEqual(try curl("/v1/bindings/\(id)", method: "DELETE").status, 404)
        try eventually("the reconciler unbinds it, as the change feed shows") {
            (try json(try curl("/v1/events?after=0&timeoutSeconds=0&limit=1000").body)["items"] as? [[String: Any]] ?? [])
                .contains { $0["resourceId"] as? String == id && $0["action"] as? String == "binding.unbind" }
        }
        stopServer()

        let database = try DatabaseQueue(path: directory + "/bindery.sqlite")
        let actions = try database.read { db in
            try Row.fetchAll(db, sql: "SELECT actor_identity, action FROM audit_events ORDER BY seq").map { ($0[0] as String, $0[1] as String) }
        }
        let byAdmin = actions.filter { $0.0 == "spiffe://bindery.local/admin" }.map(\.1)
        XCTAssertEqual(byAdmin, ["vm.create", "device.assign", "binding.create", "binding.replace", "binding.delete"])
        let byReconciler = actions.filter { $0.0 == "reconciler" }.map(\.1)
        for action in ["vm.open-context", "device.attach", "binding.bind", "binding.rebind", "binding.unbind"] {
            XCTAssertTrue(byReconciler.contains(action), "reconciler did \(action): \(byReconciler)")
        }
        XCTAssertTrue(try bindery(["audit", "verify", "--data-dir", directory, "--json"]).1.contains("\"valid\":true"))
    }

    func testEveryValidationRuleAnswersWithItsStatusAndType() throws {
        try startServer()
        let vm = try createVM("rules")
        XCTAssertEqual(try curl("/v1/vms/\(vm)/devices/0000:3b:00.0", method: "PUT", body: "{}").status, 202)
        XCTAssertEqual(try curl("/v1/vms/\(vm)/devices/0000:af:00.0", method: "PUT", body: "{}").status, 202)
        let cases: [(String, String, Int, String, String)] = [
            ("unknown format", bindingBody(vm: vm, format: "arm-smmu"), 422, "validation-failed", "/format"),
            ("unsupported version", bindingBody(vm: vm, version: 2), 422, "validation-failed", "/version must be one of 1"),
            ("address width", bindingBody(vm: vm, width: 40), 422, "validation-failed", "/pageTable/addressWidth"),
            ("unaligned table", bindingBody(vm: vm, address: "0x1234"), 422, "validation-failed", "4 KiB aligned"),
            ("outside memory", bindingBody(vm: vm, address: "0x80000000000"), 422, "validation-failed", "outside"),
            ("PASID 0", bindingBody(vm: vm, pasid: 0), 422, "pasid-out-of-range", "outside 1...1048575"),
            ("PASID beyond width", bindingBody(vm: vm, pasid: 1 << 20), 422, "pasid-out-of-range", "20-bit"),
            ("device not assigned", bindingBody(vm: vm, device: "0000:3c:00.0"), 422, "validation-failed", "not assigned"),
            ("device without PASID", bindingBody(vm: vm, device: "0000:af:00.0"), 422, "validation-failed", "no PASID capability"),
            ("other binding type", bindingBody(vm: vm, type: "host-page-table"), 422, "validation-failed", "/type"),
            ("host PASID beyond width", bindingBody(vm: vm, extra: #","hostPasid":2000000"#), 422, "pasid-out-of-range", "hostPasid"),
            ("unknown field", bindingBody(vm: vm, extra: #","colour":"red""#), 422, "validation-failed", "/colour is not a field of this request"),
            ("wrong type", bindingBody(vm: vm).replacingOccurrences(of: #""guestPasid":5"#, with: #""guestPasid":"five""#), 422, "validation-failed", "/guestPasid must be an integer"),
        ]
        for (name, body, status, type, mention) in cases {
            let answer = try curl("/v1/bindings", method: "POST", body: body)
            XCTAssertEqual(answer.status, status, "\(name): \(answer.body)")
            XCTAssertTrue(answer.headers.lowercased().contains("content-type: application/problem+json"), name)
            XCTAssertEqual(try json(answer.body)["type"] as? String, "https://bindery.dev/problems/\(type)", name)
            XCTAssertTrue(answer.body.contains(mention), "\(name) should mention \(mention): \(answer.body)")
        }
        XCTAssertEqual(try curl("/v1/bindings", method: "POST", body: bindingBody(vm: vm)).status, 202)
        let duplicate = try curl("/v1/bindings", method: "POST", body: bindingBody(vm: vm))
        XCTAssertEqual(duplicate.status, 409)
        XCTAssertEqual(try json(duplicate.body)["type"] as? String, "https://bindery.dev/problems/pasid-in-use")
        let invalidVM = try curl("/v1/vms", method: "POST", body: #"{"name":"Bad_Name","memory":[{"guestAddress":"0x1001","size":100}]}"#)
        XCTAssertEqual(invalidVM.status, 422)
        let errors = try json(invalidVM.body)["errors"] as? [[String: String]] ?? []
        XCTAssertEqual(Set(errors.map { $0["pointer"]! }), ["/name", "/memory/0/guestAddress", "/memory/0/size"])
        let unaligned = try curl("/v1/vms", method: "POST", body: #"{"name":"ok","memory":[{"guestAddress":"0x1001","size":4096}]}"#)
        XCTAssertEqual((try json(unaligned.body)["errors"] as? [[String: String]])?.map { $0["pointer"]! }, ["/memory/0/guestAddress"])
        let oversized = try curl("/v1/vms", method: "POST", body: String(repeating: " ", count: 2 << 20) + "{}")
        XCTAssertEqual(oversized.status, 413)
    }

    func testRolesIdempotencyPaginationAndGroupViability() throws {
        XCTAssertEqual(try bindery(["pki", "issue-client", "--name", "audit", "--role", "auditor", "--data-dir", directory]).0, 0)
        try startServer()
        XCTAssertEqual(try curl("/v1/vms", as: "audit", method: "POST", body: #"{"name":"nope"}"#).status, 403, "an auditor cannot write")
        XCTAssertEqual(try curl("/v1/vms", as: "audit").status, 200, "an auditor reads resources")

        let first = try curl("/v1/vms", method: "POST", headers: ["Idempotency-Key: k1"], body: #"{"name":"idem"}"#)
        XCTAssertEqual(first.status, 201)
        let replay = try curl("/v1/vms", method: "POST", headers: ["Idempotency-Key: k1"], body: #"{"name":"idem"}"#)
        XCTAssertEqual(replay.status, 201)
        XCTAssertEqual(try json(replay.body)["id"] as? String, try json(first.body)["id"] as? String)
        XCTAssertTrue(replay.headers.contains("Idempotent-Replayed: true"))
        let reused = try curl("/v1/vms", method: "POST", headers: ["Idempotency-Key: k1"], body: #"{"name":"other"}"#)
        XCTAssertEqual(reused.status, 422)
        XCTAssertEqual(try json(reused.body)["type"] as? String, "https://bindery.dev/problems/idempotency-key-reused")

        for n in 0..<4 { _ = try createVM("page-\(n)") }
        var seen: [String] = [], cursor: String?
        repeat {
            let page = try json(try curl("/v1/vms?limit=2" + (cursor.map { "&after=\($0)" } ?? "")).body)
            let items = page["items"] as? [[String: Any]] ?? []
            XCTAssertLessThanOrEqual(items.count, 2)
            seen += items.compactMap { $0["id"] as? String }
            cursor = page["nextCursor"] as? String
        } while cursor != nil
        XCTAssertEqual(seen.count, 5)
        XCTAssertEqual(seen, seen.sorted())
        XCTAssertEqual(try curl("/v1/vms?limit=0").status, 422)

        let a = try createVM("group-a"), b = try createVM("group-b")
        XCTAssertEqual(try curl("/v1/vms/\(a)/devices/0000:5e:00.0", method: "PUT", body: "{}").status, 202)
        let blocked = try curl("/v1/vms/\(b)/devices/0000:5e:00.1", method: "PUT", body: "{}")
        XCTAssertEqual(blocked.status, 409)
        XCTAssertEqual(try json(blocked.body)["type"] as? String, "https://bindery.dev/problems/iommu-group-not-viable")
        XCTAssertTrue(blocked.body.contains("0000:5e:00.0"), "names the device in the way: \(blocked.body)")
        XCTAssertEqual(try curl("/v1/vms/\(a)/devices/0000:5e:00.1", method: "PUT", body: "{}").status, 202, "same VM is fine")

        let vm = try json(try curl("/v1/vms/\(a)").body)
        XCTAssertEqual(try curl("/v1/vms/\(a)", method: "DELETE", headers: ["If-Match: \"999\""]).status, 412)
        XCTAssertEqual(try curl("/v1/vms/\(a)", method: "DELETE", headers: ["If-Match: \"\(vm["resourceVersion"] as! Int)\""]).status, 202)
    }

    func testPatchingVMsListingBindingsAndFilteringDevices() throws {
        try startServer()
        let vm = try createVM("patchable"), other = try createVM("taken")
        let current = try json(try curl("/v1/vms/\(vm)").body)["resourceVersion"] as! Int
        let patched = try curl("/v1/vms/\(vm)", method: "PATCH", headers: ["If-Match: \"\(current)\""], body: #"{"labels":{"tenant":"b"}}"#)
        XCTAssertEqual(patched.status, 200, patched.body)
        XCTAssertEqual((try json(patched.body)["labels"] as? [String: String])?["tenant"], "b")
        XCTAssertEqual(try json(patched.body)["generation"] as? Int, 1, "labels are not desired kernel state")
        XCTAssertEqual(try curl("/v1/vms/\(vm)", method: "PATCH", headers: ["If-Match: \"\(current)\""], body: #"{"labels":{}}"#).status, 412)
        let clash = try curl("/v1/vms/\(vm)", method: "PATCH", body: #"{"name":"taken"}"#)
        XCTAssertEqual(clash.status, 409)
        XCTAssertEqual(try json(clash.body)["type"] as? String, "https://bindery.dev/problems/name-in-use")
        _ = other

        XCTAssertEqual(try curl("/v1/vms/\(vm)/devices/0000:3b:00.0", method: "PUT", body: "{}").status, 202)
        for pasid in 1...3 {
            XCTAssertEqual(try curl("/v1/bindings", method: "POST", body: bindingBody(vm: vm, pasid: pasid)).status, 202)
        }
        let firstPage = try json(try curl("/v1/bindings?vm=\(vm)&limit=2").body)
        XCTAssertEqual((firstPage["items"] as? [Any])?.count, 2)
        let cursor = try XCTUnwrap(firstPage["nextCursor"] as? String)
        let secondPage = try json(try curl("/v1/bindings?vm=\(vm)&limit=2&after=\(cursor)").body)
        XCTAssertEqual((secondPage["items"] as? [Any])?.count, 1)
        XCTAssertNil(secondPage["nextCursor"])
        XCTAssertEqual((try json(try curl("/v1/bindings?device=0000:3c:00.0").body)["items"] as? [Any])?.count, 0)

        let devices = { (query: String) throws -> [String] in
            (try self.json(try self.curl("/v1/devices?\(query)").body)["items"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
        }
        XCTAssertEqual(try devices("iommuGroup=14"), ["0000:5e:00.0", "0000:5e:00.1"])
        XCTAssertEqual(try devices("vm=\(vm)"), ["0000:3b:00.0"])
        XCTAssertEqual(try devices("driver=ixgbe"), ["0000:af:00.0"])
        XCTAssertFalse(try devices("assignable=true").contains("0000:3b:00.0"))
        XCTAssertEqual(try devices("assignable=true").count, 6)
    }
}

/// The same story on hosts with other IOMMU interfaces (`--simulated-host`).
final class BindingPathEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    private func bindOne(_ profile: String) throws -> (host: [String: Any], binding: [String: Any]) {
        try startServer(["--simulated-host", profile])
        let host = try json(try curl("/v1/host").body)
        let vm = try json(try curl("/v1/vms", method: "POST", body: #"{"name":"vm","memory":[{"guestAddress":"0x0","size":1073741824}]}"#).body)["id"] as! String
        XCTAssertEqual(try curl("/v1/vms/\(vm)/devices/0000:3b:00.0", method: "PUT", body: "{}").status, 202)
        let body = #"{"vm":"\#(vm)","device":"0000:3b:00.0","type":"guest-page-table","guestPasid":5,"format":"intel-vtd","version":1,"pageTable":{"address":"0x1000","addressWidth":48},"vtd":{"sre":true}}"#
        let created = try curl("/v1/bindings", method: "POST", body: body)
        guard created.status == 202 else { return (host, try json(created.body)) }
        let id = try json(created.body)["id"] as! String
        let deadline = Date().addingTimeInterval(20)
        var binding = try json(try curl("/v1/bindings/\(id)").body)
        while !["Bound", "Failed"].contains((binding["status"] as? [String: Any])?["phase"] as? String ?? "") && Date() < deadline {
            usleep(20_000)
            binding = try json(try curl("/v1/bindings/\(id)").body)
        }
        return (host, binding)
    }

    func testAnIOMMUFDHostBindsThroughIOMMUFD() throws {
        let (host, binding) = try bindOne("iommufd")
        let nesting = (host["iommu"] as? [String: Any])?["nesting"] as? [String: Any]
        XCTAssertEqual(nesting?["mechanism"] as? String, "iommufd")
        XCTAssertEqual((binding["status"] as? [String: Any])?["phase"] as? String, "Bound", "\(binding)")
    }

    func testAHostWithoutNestingRefusesWithTheReason() throws {
        let (host, refusal) = try bindOne("type1-only")
        let nesting = (host["iommu"] as? [String: Any])?["nesting"] as? [String: Any]
        XCTAssertEqual(nesting?["supported"] as? Bool, false)
        XCTAssertTrue((nesting?["reason"] as? String ?? "").contains("GET_INFO"), "\(nesting ?? [:])")
        XCTAssertEqual(refusal["status"] as? Int, 422, "refused at the API, naming what the host supports: \(refusal)")
    }

    func testADeviceWideOnlyHostRefusesPASIDBindingsAtTheAPI() throws {
        let (host, refusal) = try bindOne("iommufd-device-only")
        let nesting = (host["iommu"] as? [String: Any])?["nesting"] as? [String: Any]
        XCTAssertEqual(nesting?["mechanism"] as? String, "iommufd")
        XCTAssertEqual(nesting?["pasidScope"] as? String, "device")
        XCTAssertEqual(refusal["status"] as? Int, 422, "\(refusal)")
        XCTAssertTrue((refusal["detail"] as? String ?? "").contains("IOMMU_HWPT_ALLOC_PASID answered EOPNOTSUPP"), "\(refusal)")
    }
}
