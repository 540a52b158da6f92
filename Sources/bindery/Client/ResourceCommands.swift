import ArgumentParser
import Foundation

/// `bindery host`.
struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "host", abstract: "Show the kernel driver and IOMMU capabilities of a server.")
    @OptionGroup var client: ClientOptions
    func run() throws {
        let host = try client.call("GET", "/v1/host")
        try client.show(host, table: ["driver", "release", "nesting", "mechanism", "pasid bits", "widths"], rows: [[
            cell(host, "kernel", "driver"), cell(host, "kernel", "release"), cell(host, "iommu", "nesting", "supported"),
            cell(host, "iommu", "nesting", "mechanism"), cell(host, "iommu", "nesting", "pasidBits"),
            ((host as? [String: Any]).flatMap { (($0["iommu"] as? [String: Any])?["nesting"] as? [String: Any])?["addressWidths"] as? [Int] } ?? [])
                .map(String.init).joined(separator: ","),
        ]])
    }
}

/// `bindery vms ...`.
struct VMsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vms", abstract: "List, show, create and delete VMs on a server.",
                                                    subcommands: [List.self, Get.self, Create.self, Delete.self])
    static func rows(_ vms: [[String: Any]]) -> [[String]] {
        vms.map { [cell($0, "id"), cell($0, "name"), cell($0, "status", "phase"), cell($0, "generation"), cell($0, "resourceVersion")] }
    }
    static let columns = ["id", "name", "phase", "generation", "version"]

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every VM (all pages).")
        @OptionGroup var client: ClientOptions
        func run() throws {
            var all: [[String: Any]] = [], cursor: String?
            repeat {
                let page = try client.call("GET", "/v1/vms?limit=1000" + (cursor.map { "&after=\($0)" } ?? ""))
                all += items(page)
                cursor = (page as? [String: Any])?["nextCursor"] as? String
            } while cursor != nil
            try client.show(["items": all], table: VMsCommand.columns, rows: VMsCommand.rows(all))
        }
    }
    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one VM.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "VM id.") var id: String
        func run() throws {
            let vm = try client.call("GET", "/v1/vms/\(id)")
            try client.show(vm, table: VMsCommand.columns, rows: VMsCommand.rows([vm as? [String: Any] ?? [:]]))
        }
    }
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a VM.")
        @OptionGroup var client: ClientOptions
        @Option(help: "Name.") var name: String
        @Option(help: "Guest memory as ADDRESS:SIZE in hex and bytes, e.g. 0x0:1073741824; repeatable.") var memory: [String] = []
        @Option(help: "Label as key=value; repeatable.") var label: [String] = []
        func run() throws {
            let regions = try memory.map { spec -> [String: Any] in
                let parts = spec.split(separator: ":")
                guard parts.count == 2, let size = Int(parts[1]) else { throw ValidationError("--memory takes ADDRESS:SIZE, e.g. 0x0:1073741824") }
                return ["guestAddress": String(parts[0]), "size": size]
            }
            let labels = Dictionary(label.compactMap { pair -> (String, String)? in
                let parts = pair.split(separator: "=", maxSplits: 1)
                return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
            }, uniquingKeysWith: { _, last in last })
            let vm = try client.call("POST", "/v1/vms", body: ["name": name, "memory": regions, "labels": labels])
            try client.show(vm, table: VMsCommand.columns, rows: VMsCommand.rows([vm as? [String: Any] ?? [:]]))
        }
    }
    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a VM (bindings, then devices, then its context).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "VM id.") var id: String
        func run() throws {
            let vm = try client.call("DELETE", "/v1/vms/\(id)")
            try client.show(vm, table: VMsCommand.columns, rows: VMsCommand.rows([vm as? [String: Any] ?? [:]]))
        }
    }
}

/// `bindery devices ...`.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "devices", abstract: "List devices and assign them to VMs on a server.",
                                                    subcommands: [List.self, Assign.self, Unassign.self])
    static let columns = ["address", "group", "driver", "pasid", "vm", "phase"]
    static func rows(_ devices: [[String: Any]]) -> [[String]] {
        devices.map { [cell($0, "address"), cell($0, "iommuGroup"), cell($0, "driver"), cell($0, "pasid", "width"), cell($0, "vm"), cell($0, "status", "phase")] }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the PCI inventory.")
        @OptionGroup var client: ClientOptions
        @Flag(help: "Only devices that can be assigned now.") var assignable = false
        func run() throws {
            let page = try client.call("GET", "/v1/devices" + (assignable ? "?assignable=true" : ""))
            try client.show(page, table: DevicesCommand.columns, rows: DevicesCommand.rows(items(page)))
        }
    }
    struct Assign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Assign a device to a VM.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "PCI address, e.g. 0000:3b:00.0.") var address: String
        @Option(help: "VM id.") var vm: String
        @Flag(help: "Rebind to vfio-pci (and back on release).") var managed = false
        func run() throws {
            let device = try client.call("PUT", "/v1/vms/\(vm)/devices/\(address)", body: ["managed": managed])
            try client.show(device, table: DevicesCommand.columns, rows: DevicesCommand.rows([device as? [String: Any] ?? [:]]))
        }
    }
    struct Unassign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a device back.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "PCI address.") var address: String
        @Option(help: "VM id.") var vm: String
        func run() throws {
            let device = try client.call("DELETE", "/v1/vms/\(vm)/devices/\(address)")
            try client.show(device, table: DevicesCommand.columns, rows: DevicesCommand.rows([device as? [String: Any] ?? [:]]))
        }
    }
}

/// `bindery bindings ...`.
struct BindingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bindings", abstract: "List, show, create and delete guest PASID bindings on a server.",
                                                    subcommands: [List.self, Get.self, Create.self, Delete.self])
    static let columns = ["id", "vm", "device", "guest pasid", "host pasid", "phase"]
    static func rows(_ bindings: [[String: Any]]) -> [[String]] {
        bindings.map { [cell($0, "id"), cell($0, "vm"), cell($0, "device"), cell($0, "guestPasid"), cell($0, "status", "hostPasid"), cell($0, "status", "phase")] }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List live bindings (all pages).")
        @OptionGroup var client: ClientOptions
        @Option(help: "Only this VM's.") var vm: String?
        func run() throws {
            var all: [[String: Any]] = [], cursor: String?
            repeat {
                var path = "/v1/bindings?limit=1000"
                if let vm { path += "&vm=\(vm)" }
                if let cursor { path += "&after=\(cursor)" }
                let page = try client.call("GET", path)
                all += items(page)
                cursor = (page as? [String: Any])?["nextCursor"] as? String
            } while cursor != nil
            try client.show(["items": all], table: BindingsCommand.columns, rows: BindingsCommand.rows(all))
        }
    }
    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one binding and its status.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Binding id.") var id: String
        func run() throws {
            let binding = try client.call("GET", "/v1/bindings/\(id)")
            try client.show(binding, table: BindingsCommand.columns, rows: BindingsCommand.rows([binding as? [String: Any] ?? [:]]))
        }
    }
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bind a guest page table (intel-vtd version 1).")
        @OptionGroup var client: ClientOptions
        @Option(help: "VM id.") var vm: String
        @Option(help: "PCI address of a device assigned to the VM.") var device: String
        @Option(name: .customLong("guest-pasid"), help: "The guest's PASID.") var guestPASID: Int
        @Option(name: .customLong("page-table"), help: "Guest physical address of the page table, hex.") var pageTable: String
        @Option(name: .customLong("address-width"), help: "39, 48 or 57.") var addressWidth = 48
        @Option(name: .customLong("host-pasid"), help: "A specific host PASID (default: allocated).") var hostPASID: Int?
        func run() throws {
            var body: [String: Any] = ["vm": vm, "device": device, "type": "guest-page-table", "guestPasid": guestPASID, "format": "intel-vtd",
                                       "version": 1, "pageTable": ["address": pageTable, "addressWidth": addressWidth]]
            if let hostPASID { body["hostPasid"] = hostPASID }
            let binding = try client.call("POST", "/v1/bindings", body: body)
            try client.show(binding, table: BindingsCommand.columns, rows: BindingsCommand.rows([binding as? [String: Any] ?? [:]]))
        }
    }
    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unbind and delete a binding.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Binding id.") var id: String
        func run() throws {
            let binding = try client.call("DELETE", "/v1/bindings/\(id)")
            try client.show(binding, table: BindingsCommand.columns, rows: BindingsCommand.rows([binding as? [String: Any] ?? [:]]))
        }
    }
}

/// `bindery audit list`: the history from a server.
struct AuditListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List audit events from a server (needs the admin or auditor role).")
    @OptionGroup var client: ClientOptions
    @Option(help: "Only this action, e.g. binding.bind.") var action: String?
    @Option(help: "Only this actor identity.") var actor: String?
    @Option(help: "At most this many (1–1000).") var limit = 100
    func run() throws {
        var path = "/v1/audit?limit=\(limit)"
        if let action { path += "&action=\(action)" }
        if let actor { path += "&actor=\(actor.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: ":/"))) ?? actor)" }
        let page = try client.call("GET", path)
        try client.show(page, table: ["seq", "time", "actor", "action", "resource", "outcome"], rows: items(page).map {
            [cell($0, "seq"), cell($0, "time"), cell($0, "actor", "identity"), cell($0, "action"), cell($0, "resourceId"), cell($0, "outcome")]
        })
    }
}
