/// What this binary is: its version, the commit it was built from and when (the constants
/// come from BuildInfoPlugin).
package enum BuildInfo {
    /// `0.5.0 (commit 3a849c8e1f2b, built 2026-12-04T12:00:00Z)`: what `bindery --version` prints.
    package static var summary: String { "\(version) (commit \(commit), built \(builtAt))" }
}
