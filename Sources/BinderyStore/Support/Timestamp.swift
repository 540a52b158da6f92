import Foundation

/// RFC 3339 UTC timestamps with millisecond precision, as stored and served.
public enum Timestamp {
    /// `date` as `2026-11-25T09:03:27.123Z`.
    /// Any date formats without trapping: years are clamped to 0000...9999 (what RFC 3339 can
    /// write), and times before 1970 round down like those after.
    public static func format(_ date: Date) -> String {
        // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z, in milliseconds since 1970.
        let earliest: Int64 = -62_167_219_200_000, latest: Int64 = 253_402_300_799_999
        let interval = date.timeIntervalSince1970 * 1000
        let milliseconds = interval.isNaN ? 0 : Int64(max(Double(earliest), min(Double(latest), interval.rounded(.down))))
        let (quotient, remainder) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let (wholeSeconds, fractionMilliseconds) = remainder < 0 ? (quotient - 1, remainder + 1000) : (quotient, remainder)
        var seconds = time_t(wholeSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Digits by hand: this runs for every write on the single writer, where String(format:) cost 3.5%.
        var out = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int, _ offset: Int, _ width: Int) {
            var value = value
            for index in stride(from: offset + width - 1, through: offset, by: -1) {
                out[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, 0, 4); out[4] = UInt8(ascii: "-")
        put(Int(parts.tm_mon) + 1, 5, 2); out[7] = UInt8(ascii: "-")
        put(Int(parts.tm_mday), 8, 2); out[10] = UInt8(ascii: "T")
        put(Int(parts.tm_hour), 11, 2); out[13] = UInt8(ascii: ":")
        put(Int(parts.tm_min), 14, 2); out[16] = UInt8(ascii: ":")
        put(Int(parts.tm_sec), 17, 2); out[19] = UInt8(ascii: ".")
        put(Int(fractionMilliseconds), 20, 3); out[23] = UInt8(ascii: "Z")
        return String(decoding: out, as: UTF8.self)
    }

    /// The current time, formatted.
    public static func now() -> String { format(Date()) }

    /// Parses a timestamp written by `format` (or any RFC 3339 UTC time with optional fraction).
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: bytes[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19) else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        var fraction = 0.0
        if bytes.count > 21, bytes[19] == UInt8(ascii: ".") {
            fraction = Double("0." + String(decoding: bytes[20..<(bytes.count - 1)], as: UTF8.self)) ?? 0
        }
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}
