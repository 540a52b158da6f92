import Foundation

/// RFC 3339 UTC timestamps with millisecond precision, as stored and served.
public enum Timestamp {
    /// `date` as `2026-11-25T09:03:27.123Z`.
    public static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(milliseconds % 1000)
        )
    }

    /// The current time, formatted.
    public static func now() -> String { format(Date()) }
}
