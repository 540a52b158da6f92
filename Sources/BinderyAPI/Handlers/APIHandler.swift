import BinderyBuildInfo
import BinderyReconciler
import BinderyStore
import Foundation
import OpenAPIRuntime

/// The generated `APIProtocol`, answered from the store, the reconciler and the kernel.
struct APIHandler: APIProtocol {
    let store: Store
    let reconciler: Reconciler
    let capabilities: @Sendable () -> HostCapabilities
    let kernelReachable: @Sendable () -> String?
    let metrics: RequestMetrics
    /// Where guest memory backing files may come from.
    let memoryPolicy: GuestMemoryPolicy
    /// The VMM socket's path, told to whoever gets an attach token.
    var vmmSocketPath = ""
    /// The key that signs audit checkpoints (the only key verification trusts).
    var signingKey: AuditSigningKey?

    /// How the generated code reads and writes JSON: RFC 3339 dates with milliseconds, compact,
    /// sorted keys, `/` unescaped (as the NDJSON export and `CompactJSONEncoder` write it).
    static let codingConfiguration = Configuration(dateTranscoder: RFC3339.Transcoder(), jsonEncodingOptions: [.sortedKeys, .withoutEscapingSlashes])

    func getHost(_ input: Operations.getHost.Input) async throws -> Operations.getHost.Output {
        let host = capabilities()
        typealias Nesting = Components.Schemas.Host.iommuPayload.nestingPayload
        let nesting = Nesting(
            supported: host.nesting.supported,
            mechanism: host.nesting.mechanism.flatMap { Nesting.mechanismPayload(rawValue: $0.rawValue) },
            formats: host.nesting.formats.compactMap { format in
                Nesting.formatsPayloadPayload.namePayload(rawValue: format.name).map { .init(name: $0, versions: format.versions) }
            },
            pasidBits: host.nesting.pasidBits,
            addressWidths: host.nesting.addressWidths.compactMap { Nesting.addressWidthsPayloadPayload(rawValue: $0) },
            pasidScope: host.nesting.pasidScope.flatMap { Nesting.pasidScopePayload(rawValue: $0.rawValue) },
            reason: host.nesting.reason)
        return .ok(.init(body: .json(.init(
            bindery: .init(version: BuildInfo.version, commit: BuildInfo.commit, builtAt: BuildInfo.builtAt),
            kernel: .init(driver: host.kernelDriver == "linux" ? .linux : .simulated, release: host.kernelRelease,
                          vfioApiVersion: host.vfioAPIVersion),
            iommu: .init(type1v2: host.type1v2, iommufd: host.iommufd, nesting: nesting)))))
    }

    func getHealth(_ input: Operations.getHealth.Input) async throws -> Operations.getHealth.Output {
        .ok(.init(body: .json(.init(status: .ok))))
    }

    func getReadiness(_ input: Operations.getReadiness.Input) async throws -> Operations.getReadiness.Output {
        var database = "ok"
        do {
            try await store.write { db in try db.execute(sql: "SELECT 1") }
        } catch {
            database = "not writable: \(error)"
        }
        let reconcilerState = reconciler.isRunning ? "ok" : "not running"
        let kernel = kernelReachable() ?? "ok"
        let checks = Components.Schemas.Readiness.checksPayload(database: database, reconciler: reconcilerState, kernel: kernel)
        let ready = database == "ok" && reconcilerState == "ok" && kernel == "ok"
        let body = Components.Schemas.Readiness(ready: ready, checks: checks)
        return ready ? .ok(.init(body: .json(body))) : .serviceUnavailable(.init(body: .json(body)))
    }
}
