import ArgumentParser
import BinderyVMM
import Foundation
import Glibc

/// `bindery vmm attach`: receives a VM's descriptors over the VMM socket and runs the VMM with them.
struct VMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmm", abstract: "Hand a VM's devices to the process that runs it.", subcommands: [Attach.self])

    struct Attach: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive a VM's descriptors and run COMMAND with them.",
            discussion: """
                Gets a one-time token over HTTPS (unless --token is given), connects to the VMM socket, \
                receives the VM's descriptors (type1: the container and each device's fd; iommufd: the \
                iommufd and each device's cdev) and runs COMMAND with them inherited, the way systemd \
                passes sockets: numbered from 3, LISTEN_FDS=count, LISTEN_FDNAMES=names joined by ':' \
                (vfio-container, vfio-device.0000-3b-00.0, iommufd, vfio-cdev.0000-3b-00.0), LISTEN_PID. \
                BINDERY_VMM_MANIFEST holds the manifest (JSON: device addresses, region and IRQ counts, \
                iommufd object ids, guest memory). The socket connection is inherited as \
                BINDERY_VMM_CONNECTION_FD: Bindery counts the VM as held until COMMAND and its children close it.

                Example: bindery vmm attach --vm vm-0c9e... -- ./my-vmm --config vm.json
                """)
        @OptionGroup var client: ClientOptions
        @Option(help: "The VM's id.") var vm: String
        @Option(help: "A token from POST /v1/vms/{id}/attachments (default: get one now with the client certificate).") var token: String?
        @Option(help: "The VMM socket (default: the 'socket' the token came with, else ./bindery-data/vmm.sock).") var socket: String?
        @Option(help: "How long a token obtained here stays usable, in seconds (10-3600).") var ttl = 60
        @Argument(parsing: .postTerminator, help: "The command to run (after --) and its arguments.") var command: [String] = []

        func validate() throws {
            guard !command.isEmpty else { throw ValidationError("name the command to run after --, e.g. -- ./my-vmm") }
            guard (10...3600).contains(ttl) else { throw ValidationError("--ttl must be between 10 and 3600") }
        }

        func run() throws {
            var secret = token, path = socket
            if secret == nil {
                let answer = try client.call("POST", "/v1/vms/\(vm)/attachments", body: ["ttlSeconds": ttl]) as? [String: Any]
                guard let issued = answer?["token"] as? String else { throw ValidationError("the server gave no token: \(answer ?? [:])") }
                secret = issued
                if path == nil { path = answer?["socket"] as? String }
            }
            let attachment = try VMMAttachment.attach(socket: path ?? "./bindery-data/vmm.sock", vm: vm, token: secret!)
            let manifest = String(decoding: (try? JSONEncoder().encode(attachment.manifest)) ?? Data(), as: UTF8.self)
            let count = attachment.descriptors.count
            // Out of the way first (above every target number), then down to 3, 4, ...
            let floor = Int32(4 + count)
            let lifted = (attachment.descriptors + [attachment.connection.fd]).map { fd -> Int32 in
                let high = fcntl(fd, F_DUPFD_CLOEXEC, floor)
                Glibc.close(fd)
                return high
            }
            guard !lifted.contains(where: { $0 < 0 }) else { throw ValidationError("fcntl(F_DUPFD): \(String(cString: strerror(errno)))") }
            for (index, fd) in lifted.enumerated() {
                guard dup2(fd, Int32(3 + index)) >= 0 else { throw ValidationError("dup2: \(String(cString: strerror(errno)))") }
                Glibc.close(fd)
            }
            setenv("LISTEN_FDS", String(count), 1)
            setenv("LISTEN_FDNAMES", attachment.manifest.listenFDNames, 1)
            setenv("LISTEN_PID", String(getpid()), 1)
            setenv("BINDERY_VMM_MANIFEST", manifest, 1)
            setenv("BINDERY_VMM_CONNECTION_FD", String(3 + count), 1)
            var arguments = command.map { strdup($0) } + [nil]
            execvp(command[0], &arguments)
            throw ValidationError("cannot run \(command[0]): \(String(cString: strerror(errno)))")
        }
    }
}
