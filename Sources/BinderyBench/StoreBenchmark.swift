import ArgumentParser
import BinderyStore
import Foundation

/// Durable writes per second with group commit against one commit per write, in one run.
struct StoreBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Durable writes/s at several writer counts: group commit vs one commit per write.",
        discussion: """
            Each write creates a VM with one memory region and its audit event, through the \
            store's writer (WAL, synchronous=FULL). Modes run interleaved, every round, on a fresh \
            database in --scratch; the median and the min–max over rounds are reported.
            """
    )

    @Option(help: "Concurrent writer counts, comma-separated.")
    var writers = "1,16,64"
    @Option(help: "Seconds per measurement.")
    var seconds = 3.0
    @Option(help: "Rounds (the median is reported).")
    var rounds = 3
    @Option(help: "Directory for the scratch databases.")
    var scratch = ".build/bench-store"
    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Sample: Codable {
        var mode: String
        var writers: Int
        var writesPerSecond: [Double]
        var commitsPerSecond: [Double]
    }

    func run() async throws {
        let counts = writers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 > 0 }) else { throw ValidationError("--writers needs positive integers") }
        let modes: [(String, Int)] = [("group-commit", 512), ("commit-per-write", 1)]
        var samples: [String: Sample] = [:]
        for round in 1...rounds {
            for count in counts {
                for (mode, batch) in modes {
                    let (writes, commits) = try await measure(writers: count, batchSize: batch, label: "\(mode)-\(count)-\(round)")
                    let key = "\(mode)/\(count)"
                    samples[key, default: Sample(mode: mode, writers: count, writesPerSecond: [], commitsPerSecond: [])]
                        .writesPerSecond.append(writes)
                    samples[key]!.commitsPerSecond.append(commits)
                    FileHandle.standardError.write(Data(String(format: "round %d %@ writers=%d: %.0f writes/s\n", round, mode, count, writes).utf8))
                }
            }
        }
        print("| writers | group commit writes/s (min–max) | commit per write writes/s (min–max) | ratio |")
        print("|---:|---:|---:|---:|")
        for count in counts {
            let group = samples["group-commit/\(count)"]!.writesPerSecond
            let single = samples["commit-per-write/\(count)"]!.writesPerSecond
            print(String(format: "| %d | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.2f× |", count,
                         median(group), group.min()!, group.max()!, median(single), single.min()!, single.max()!,
                         median(group) / median(single)))
        }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(samples.values.sorted { ($0.writers, $0.mode) < ($1.writers, $1.mode) })
                .write(to: URL(fileURLWithPath: json))
        }
    }

    private func measure(writers: Int, batchSize: Int, label: String) async throws -> (Double, Double) {
        let directory = (scratch as NSString).appendingPathComponent(label)
        try? FileManager.default.removeItem(atPath: directory)
        let store = try Store(dataDirectory: directory, maximumBatchSize: batchSize)
        let deadline = Date().addingTimeInterval(seconds)
        let start = Date()
        let before = store.writer.statistics
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var done = 0
                    while Date() < deadline {
                        let spec = VMSpec(name: "bench-\(writer)-\(done)", labels: ["bench": "store"],
                                          memory: [MemoryRegion(guestAddress: 0, size: 1 << 30)])
                        _ = try await store.write { db in
                            try VMRepository.create(spec, actor: AuditActor(identity: "bench"), in: db)
                        }
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = Date().timeIntervalSince(start)
        let commits = store.writer.statistics.commits - before.commits
        try? FileManager.default.removeItem(atPath: directory)
        return (Double(total) / elapsed, Double(commits) / elapsed)
    }
}

/// The median of `values` (the mean of the middle two for an even count).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
