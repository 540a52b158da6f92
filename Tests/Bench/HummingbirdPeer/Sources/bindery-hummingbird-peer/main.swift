/// The Hummingbird 2 peer of `make bench-api` (Tests/Bench/api_bench.py): the same generated
/// handlers as `bindery serve` (`PeerAPI`, over the same store and simulated kernel), served by
/// Hummingbird over HTTP/1.1 with NIOSSL and mutual TLS, to compare Bindery's transport with it.
///
///     bindery-hummingbird-peer --data-dir D --listen 127.0.0.1:PORT \
///         --certificate server.pem --key server-key.pem --ca ca.pem
///
/// Prints `serving https on HOST:PORT` once listening; SIGTERM or SIGINT stops it.
import BinderyAPI
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOSSL
import OpenAPIHummingbird

struct Options {
    var dataDirectory = ""
    var host = "127.0.0.1"
    var port = 8443
    var certificate = ""
    var key = ""
    var ca = ""

    static func parse(_ arguments: [String]) -> Options {
        func fail(_ message: String) -> Never {
            FileHandle.standardError.write(Data((message + "\nusage: bindery-hummingbird-peer --data-dir D --listen HOST:PORT "
                + "--certificate server.pem --key server-key.pem --ca ca.pem\n").utf8))
            exit(2)
        }
        var options = Options()
        var index = 0
        while index < arguments.count {
            let flag = arguments[index]
            guard index + 1 < arguments.count else { fail("\(flag) needs a value") }
            let value = arguments[index + 1]
            switch flag {
            case "--data-dir": options.dataDirectory = value
            case "--listen":
                guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]) else {
                    fail("--listen wants HOST:PORT")
                }
                options.host = String(value[..<colon])
                options.port = port
            case "--certificate": options.certificate = value
            case "--key": options.key = value
            case "--ca": options.ca = value
            default: fail("unknown option \(flag)")
            }
            index += 2
        }
        if options.dataDirectory.isEmpty || options.certificate.isEmpty || options.key.isEmpty || options.ca.isEmpty {
            fail("--data-dir, --certificate, --key and --ca are required")
        }
        return options
    }
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))

let api = try await PeerAPI.start(dataDirectory: options.dataDirectory)
let router = Router()
try api.register(on: router, caller: "spiffe://bench/client")

// Mutual TLS: a client certificate signed by --ca is required; no host name check on clients.
var tls = TLSConfiguration.makeServerConfiguration(
    certificateChain: try NIOSSLCertificate.fromPEMFile(options.certificate).map { .certificate($0) },
    privateKey: .privateKey(try NIOSSLPrivateKey(file: options.key, format: .pem))
)
tls.trustRoots = .file(options.ca)
tls.certificateVerification = .noHostnameVerification

var logger = Logger(label: "bindery-hummingbird-peer")
logger.logLevel = .warning
let app = Application(
    router: router,
    server: try .tls(.http1(), tlsConfiguration: tls),
    configuration: .init(address: .hostname(options.host, port: options.port), backlog: 1024),
    onServerRunning: { channel in
        FileHandle.standardOutput.write(Data("serving https on \(options.host):\(channel.localAddress?.port ?? options.port)\n".utf8))
    },
    eventLoopGroupProvider: .singleton,  // MultiThreadedEventLoopGroup.singleton: one loop per core
    logger: logger
)
try await app.runService()
await api.stop()
