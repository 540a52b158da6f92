import BinderyStore
import Foundation
import OpenAPIRuntime

extension APIHandler {
    func getOpenAPI(_ input: Operations.getOpenAPI.Input) async throws -> Operations.getOpenAPI.Output {
        .ok(.init(body: .yaml(HTTPBody(embeddedOpenAPIFiles.first?.text ?? ""))))
    }

    func getMetrics(_ input: Operations.getMetrics.Input) async throws -> Operations.getMetrics.Output {
        let head = try await store.read { db in try AuditChain.headSeq(in: db) }
        var lines = metrics.lines()
        lines += ["# HELP bindery_reconcile_total Reconcile actions by resource kind and outcome.", "# TYPE bindery_reconcile_total counter"]
        for (kind, outcome, count) in reconciler.statistics.outcomeCounts {
            lines.append("bindery_reconcile_total{kind=\"\(kind)\",outcome=\"\(outcome)\"} \(count)")
        }
        lines += ["# HELP bindery_kernel_errors_total Kernel errors by ioctl and errno.", "# TYPE bindery_kernel_errors_total counter"]
        for (call, errno, count) in reconciler.statistics.kernelErrorCounts {
            lines.append("bindery_kernel_errors_total{ioctl=\"\(call)\",errno=\"\(errno)\"} \(count)")
        }
        lines += ["# HELP bindery_audit_head_seq The last audit event's seq.", "# TYPE bindery_audit_head_seq gauge",
                  "bindery_audit_head_seq \(head)",
                  "# HELP bindery_bindings_bound Bindings bound in the kernel now.", "# TYPE bindery_bindings_bound gauge",
                  "bindery_bindings_bound \(reconciler.boundBindingCount)"]
        return .ok(.init(body: .plainText(HTTPBody(lines.joined(separator: "\n") + "\n"))))
    }
}
