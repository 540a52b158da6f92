import ArgumentParser
import BinderyHTTP
import Foundation

/// Serves a fixed 13-byte response over mutual TLS, for `make bench-http`.
struct HTTPBenchServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-server",
        abstract: "Serve \"hello, world\\n\" over mutual TLS until SIGTERM (the benchmark's Bindery side)."
    )

    @Option(help: "Listen address.") var listen = "127.0.0.1:0"
    @Option(help: "Server certificate (PEM).") var certificate: String
    @Option(help: "Server key (PEM).") var key: String
    @Option(help: "Client CA bundle (PEM).") var ca: String
    @Option(help: "Event loops (default: one per core).") var loops: Int?
    @Option(help: "Connection cap.") var maxConnections = 20_000

    struct Hello: HTTPHandler {
        static let body = Array("hello, world\n".utf8)
        func respond(to request: HTTPRequest) async -> HTTPResponse { respondImmediately(to: request)! }
        func respondImmediately(to request: HTTPRequest) -> HTTPResponse? {
            HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Self.body)
        }
    }

    func run() throws {
        var configuration = HTTPServerConfiguration(
            listen: [listen], tls: TLSConfiguration(certificatePath: certificate, privateKeyPath: key, clientCABundlePath: ca))
        if let loops { configuration.eventLoops = loops }
        configuration.maxConnections = maxConnections
        configuration.keepAliveTimeout = .seconds(600)
        let server = try HTTPServer(configuration: configuration, handler: Hello()) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        try server.start()
        server.installSignalHandlers()
        FileHandle.standardOutput.write(Data("listening \(server.boundAddresses[0].port)\n".utf8))
        server.wait()
    }
}
