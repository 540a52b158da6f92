import ArgumentParser
import BinderyStore

/// `bindery migrate`: create or upgrade the database, then stop.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the database in the data directory.",
        discussion: """
            Applies the migrations built into this binary that the database lacks, each in its \
            own transaction, and records each with its SHA-256. Refuses (exit 1) a database whose \
            applied migrations were edited, or that was written by a newer Bindery. \
            `bindery serve` does the same on start; this command lets you do it alone.
            """
    )

    @OptionGroup var data: DataDirectoryOptions

    func run() throws {
        let migrator = try Migrator()
        do {
            let store = try Store(dataDirectory: data.dataDirectory, migrator: migrator)
            let statuses = try store.pool.read { db in
                try String.fetchAll(db, sql: "SELECT printf('%04d_%s.sql  %s', version, name, applied_at) FROM bindery_migrations ORDER BY version")
            }
            print("database \(store.path): \(statuses.count) migrations applied")
            statuses.forEach { print("  \($0)") }
        } catch let error as StoreError {
            throw CommandFailure(error.description)
        }
    }
}

/// A failure the command line reports as one line and exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
