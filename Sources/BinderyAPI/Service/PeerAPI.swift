import BinderyHTTP
import BinderyReconciler
import BinderyStore
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// The API's generated handlers over a data directory, for another `ServerTransport` to serve:
/// `make bench-api` runs them through Hummingbird 2 (Tests/Bench/HummingbirdPeer) to compare
/// transports on the same handlers, store and simulated kernel. Every request runs as `caller`
/// with the admin role; routing, authorization and the contract's checks are the other
/// transport's (none), so the peer does less per request than `bindery serve`.
public final class PeerAPI: Sendable {
    private let store: Store
    private let reconciler: Reconciler
    private let handler: APIHandler

    private init(store: Store, reconciler: Reconciler, handler: APIHandler) {
        self.store = store
        self.reconciler = reconciler
        self.handler = handler
    }

    /// Opens (or creates) the store in `dataDirectory` and starts a reconciler on the simulated kernel.
    public static func start(dataDirectory: String) async throws -> PeerAPI {
        let kernel = try HostKernel.open(.simulated, sysfsRoot: "/sys", simulatedHost: "type1-nesting", faults: "",
                                         dataDirectory: dataDirectory)
        let store = try Store(dataDirectory: dataDirectory)
        let reconciler = Reconciler(store: store, kernel: kernel, dataDirectory: dataDirectory)
        try await reconciler.start()
        let memory = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path + "/memory"
        try FileManager.default.createDirectory(atPath: memory, withIntermediateDirectories: true)
        let handler = APIHandler(store: store, reconciler: reconciler, capabilities: { reconciler.capabilities },
                                 kernelReachable: { kernel.unreachableReason() }, metrics: RequestMetrics(),
                                 memoryPolicy: try GuestMemoryPolicy(directories: [memory]))
        return PeerAPI(store: store, reconciler: reconciler, handler: handler)
    }

    /// Registers every operation on `transport`, encoding as `bindery serve` does; each request
    /// runs as `caller` (an identity, e.g. the client certificate's URI) with the admin role.
    public func register(on transport: any ServerTransport, caller: String) throws {
        try handler.registerHandlers(on: transport, configuration: APIHandler.codingConfiguration,
                                     middlewares: [MetricsMiddleware(metrics: handler.metrics), CallerMiddleware(caller: caller)])
    }

    /// Stops the reconciler.
    public func stop() async { await reconciler.stop() }
}

/// Sets the request context the handlers read (actor, request id) for a fixed admin caller.
private struct CallerMiddleware: ServerMiddleware {
    let caller: String

    func intercept(_ request: HTTPTypes.HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
                   next: @Sendable (HTTPTypes.HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPTypes.HTTPResponse, HTTPBody?))
        async throws -> (HTTPTypes.HTTPResponse, HTTPBody?) {
        let peer = PeerInfo(identity: caller, certificateFingerprint: "", remoteAddress: "127.0.0.1:0", identityKind: .uri)
        let context = RequestContext(peer: peer, role: .admin, requestID: ResourceIDMaker.requestID())
        return try await RequestContext.$current.withValue(context) { try await next(request, body, metadata) }
    }
}
