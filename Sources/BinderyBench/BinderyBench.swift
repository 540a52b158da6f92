import ArgumentParser

/// `bindery-bench`: benchmark and torture drivers. Not shipped; `make bench` runs it.
@main
struct BinderyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bindery-bench",
        abstract: "Benchmarks and torture drivers for Bindery.",
        subcommands: [StoreBenchmark.self, KernelBenchmark.self, HTTPBenchServer.self, ReconcileRun.self, KernelCheck.self, WriteStream.self, AuditFill.self]
    )
}
