@testable import BinderyAPI
@testable import BinderyHTTP
import BinderyReconciler
import BinderyStore
import Foundation
import XCTest

/// A `BinderyTransport` over a fresh store, simulated kernel and reconciler, with the generated
/// handlers registered and no middleware: the paths `LoopReadsTests` and `DirectWritesTests`
/// hold equal. `directMetrics` counts only the requests the transport answered itself.
final class TransportFixture {
    let directory: String
    let store: Store
    let reconciler: Reconciler
    let transport: BinderyTransport
    let handler: APIHandler
    let directMetrics = RequestMetrics()
    /// The admin caller (granted by URI).
    static let admin = PeerInfo(identity: "spiffe://test/admin", certificateFingerprint: "", remoteAddress: "127.0.0.1:1", identityKind: .uri)
    /// A caller with the reader role.
    static let reader = PeerInfo(identity: "spiffe://test/reader", certificateFingerprint: "", remoteAddress: "127.0.0.1:3", identityKind: .uri)

    /// Starts the reconciler; `directWrites` gives the transport the handler for `DirectWrites`.
    init(directWrites: Bool) async throws {
        directory = NSTemporaryDirectory() + "bindery-transport-" + UUID().uuidString
        let kernel = try HostKernel.open(.simulated, sysfsRoot: "/sys", simulatedHost: "type1-nesting", faults: "", dataDirectory: directory)
        // As the service opens it: GETs and lists answer from the stored representations.
        store = try Store(dataDirectory: directory, renderer: APIRepresentations())
        let reconciler = Reconciler(store: store, kernel: kernel, dataDirectory: directory)
        self.reconciler = reconciler
        try await reconciler.start()
        let memory = directory + "/memory"
        try FileManager.default.createDirectory(atPath: memory, withIntermediateDirectories: true)
        let roles = RoleMap(["uri:spiffe://test/admin": .admin, "uri:spiffe://test/reader": .reader])
        transport = BinderyTransport(store: store, contract: try Contract.embedded(), grants: { roles })
        transport.metrics = directMetrics
        handler = APIHandler(store: store, reconciler: reconciler, capabilities: { reconciler.capabilities },
                             kernelReachable: { kernel.unreachableReason() }, metrics: RequestMetrics(),
                             memoryPolicy: try GuestMemoryPolicy(directories: [memory]))
        if directWrites { transport.handler = handler }
        try handler.registerHandlers(on: transport, configuration: APIHandler.codingConfiguration)
    }

    /// Stops the reconciler and removes the data directory.
    func stop() async {
        await reconciler.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A request as the HTTP server hands it over (a JSON body gets its Content-Type).
    func request(_ method: String, _ target: String, body: String? = nil, headers: [(String, String)] = [],
                 peer: PeerInfo? = nil) -> BinderyHTTP.HTTPRequest {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var fields = [("Host", "localhost"), ("X-Request-Id", "req-fixed")] + headers
        if body != nil { fields.append(("Content-Type", "application/json")) }
        let head = HTTPRequestHead(method: method, target: target, path: String(parts[0]), query: parts.count > 1 ? String(parts[1]) : nil,
                                   minorVersion: 1, headers: fields.map { (name: $0.0, value: $0.1) },
                                   framing: body == nil ? .none : .contentLength(body!.utf8.count))
        return BinderyHTTP.HTTPRequest(head: head, body: Array((body ?? "").utf8), peer: peer ?? Self.admin, loop: 1)
    }

    /// POSTs `body` to `target` and returns the created resource's id.
    func created(_ target: String, _ body: String, file: StaticString = #filePath, line: UInt = #line) async throws -> String {
        let response = await transport.respond(to: request("POST", target, body: body))
        XCTAssertTrue((200..<300).contains(response.status), String(decoding: response.body, as: UTF8.self), file: file, line: line)
        return try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])?["id"] as? String, file: file, line: line)
    }
}
