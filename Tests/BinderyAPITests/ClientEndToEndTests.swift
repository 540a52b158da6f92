import Foundation
import XCTest

/// The client subcommands against a real server.
final class ClientEndToEndTests: EndToEndTestCase, @unchecked Sendable {
    private func client(_ arguments: [String]) throws -> (Int32, String) {
        let pki = directory + "/pki"
        return try bindery(arguments + ["--server", "https://localhost:\(port)", "--ca", "\(pki)/ca.pem", "--cert", "\(pki)/admin.pem",
                                        "--key", "\(pki)/admin-key.pem"])
    }

    func testPeopleCanDriveTheStoryFromTheCommandLine() throws {
        try startServer()
        let (hostStatus, host) = try client(["host"])
        XCTAssertEqual(hostStatus, 0)
        XCTAssertTrue(host.contains("DRIVER") && host.contains("simulated") && host.contains("vfio-type1-nesting") && host.contains("yes"), host)

        let (createStatus, created) = try client(["vms", "create", "--name", "cli-vm", "--memory", "0x0:1073741824", "--label", "team=a", "--json"])
        XCTAssertEqual(createStatus, 0, created)
        let vm = try XCTUnwrap(try json(created)["id"] as? String)
        XCTAssertTrue(try client(["vms", "list"]).1.contains("cli-vm"))
        XCTAssertEqual(try client(["devices", "assign", "0000:3b:00.0", "--vm", vm]).0, 0)
        let (bindStatus, bound) = try client(["bindings", "create", "--vm", vm, "--device", "0000:3b:00.0", "--guest-pasid", "9",
                                              "--page-table", "0x10000", "--json"])
        XCTAssertEqual(bindStatus, 0, bound)
        let id = try XCTUnwrap(try json(bound)["id"] as? String)
        let deadline = Date().addingTimeInterval(20)
        var listing = ""
        while !listing.contains("Bound") && Date() < deadline {
            listing = try client(["bindings", "get", id]).1
            usleep(20_000)
        }
        XCTAssertTrue(listing.contains("Bound"), listing)

        let (failureStatus, _) = try client(["bindings", "create", "--vm", vm, "--device", "0000:3b:00.0", "--guest-pasid", "0", "--page-table", "0x10000"])
        XCTAssertNotEqual(failureStatus, 0, "a refused request fails the command")
        XCTAssertTrue(try client(["audit", "list", "--action", "binding.bind"]).1.contains("reconciler"))
    }
}
