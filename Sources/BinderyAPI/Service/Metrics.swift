import Foundation
import HTTPTypes
import OpenAPIRuntime

/// Request counts and latency histograms by operation id and status, in Prometheus text.
final class RequestMetrics: @unchecked Sendable {
    private struct Series {
        var count = 0
        var sum = 0.0
        var buckets: [Int]
    }

    /// Histogram bucket bounds, seconds.
    static let bounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private let lock = NSLock()
    private var series: [String: Series] = [:]   // "operation status"
    private var inFlight: [String: Int] = [:]     // operation -> requests running now

    /// Counts a request of `operation` as running until `finished` is called.
    func started(_ operation: String) { lock.withLock { inFlight[operation, default: 0] += 1 } }

    /// Counts a request of `operation` as no longer running.
    func finished(_ operation: String) { lock.withLock { inFlight[operation, default: 1] -= 1 } }

    func observe(operation: String, status: Int, seconds: Double) {
        lock.withLock {
            var entry = series["\(operation) \(status)"] ?? Series(buckets: Array(repeating: 0, count: Self.bounds.count))
            entry.count += 1
            entry.sum += seconds
            for (index, bound) in Self.bounds.enumerated() where seconds <= bound { entry.buckets[index] += 1 }
            series["\(operation) \(status)"] = entry
        }
    }

    /// The exposition lines for requests.
    func lines() -> [String] {
        let (snapshot, running) = lock.withLock { (series, inFlight) }
        var lines = ["# HELP bindery_http_requests_in_flight API requests running now, by operation id.",
                     "# TYPE bindery_http_requests_in_flight gauge"]
        for operation in running.keys.sorted() {
            lines.append("bindery_http_requests_in_flight{operation=\"\(operation)\"} \(running[operation]!)")
        }
        lines += ["# HELP bindery_http_requests_total API requests by operation id and status.",
                     "# TYPE bindery_http_requests_total counter"]
        let keys = snapshot.keys.sorted()
        for key in keys {
            let (operation, status) = Self.split(key)
            lines.append("bindery_http_requests_total{operation=\"\(operation)\",status=\"\(status)\"} \(snapshot[key]!.count)")
        }
        lines += ["# HELP bindery_http_request_duration_seconds API request latency.",
                  "# TYPE bindery_http_request_duration_seconds histogram"]
        for key in keys {
            let (operation, status) = Self.split(key)
            let entry = snapshot[key]!
            let labels = "operation=\"\(operation)\",status=\"\(status)\""
            for (index, bound) in Self.bounds.enumerated() {
                lines.append("bindery_http_request_duration_seconds_bucket{\(labels),le=\"\(bound)\"} \(entry.buckets[index])")
            }
            lines.append("bindery_http_request_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(entry.count)")
            lines.append("bindery_http_request_duration_seconds_sum{\(labels)} \(entry.sum)")
            lines.append("bindery_http_request_duration_seconds_count{\(labels)} \(entry.count)")
        }
        return lines
    }

    private static func split(_ key: String) -> (String, String) {
        let parts = key.split(separator: " ")
        return (String(parts[0]), String(parts[1]))
    }
}

/// Times every operation and counts it by status (errors counted with the status they become).
struct MetricsMiddleware: ServerMiddleware {
    let metrics: RequestMetrics

    func intercept(_ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
                   next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?))
        async throws -> (HTTPResponse, HTTPBody?) {
        let start = ContinuousClock.now
        metrics.started(operationID)
        defer { metrics.finished(operationID) }
        do {
            let result = try await next(request, body, metadata)
            metrics.observe(operation: operationID, status: result.0.status.code, seconds: Self.seconds(since: start))
            return result
        } catch {
            metrics.observe(operation: operationID, status: BinderyTransport.problem(for: error).status, seconds: Self.seconds(since: start))
            throw error
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
