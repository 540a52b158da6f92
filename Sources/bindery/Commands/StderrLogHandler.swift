import Foundation
import Logging

/// swift-log handler for `bindery serve`: one line per event on stderr, as text
/// (`2026-11-25T10:00:00Z info bindery: message key=value`) or as one JSON object.
struct StderrLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let time = ISO8601DateFormatter().string(from: Date())
        var fields = metadata
        fields.merge(metadataProvider?.get() ?? [:]) { _, new in new }
        fields.merge(event.metadata ?? [:]) { _, new in new }
        let line: String
        if json {
            var object: [String: String] = ["time": time, "level": event.level.rawValue, "label": label, "message": "\(event.message)"]
            for (key, value) in fields { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        } else {
            let extra = fields.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
            line = "\(time) \(event.level.rawValue) \(label): \(event.message)\(extra)"
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
