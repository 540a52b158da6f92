import Foundation

/// RFC 3339 UTC timestamps with millisecond precision, as stored and served.
public enum Timestamp {
    /// `date` as `2026-11-25T09:03:27.123Z`.
    /// Any date formats without trapping: years are clamped to 0000...9999 (what RFC 3339 can
    /// write), and times before 1970 round down like those after.
    public static func format(_ date: Date) -> String {
        // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z, in milliseconds since 1970.
        let earliest: Int64 = -62_167_219_200_000, latest: Int64 = 253_402_300_799_999
        // Truncated to the millisecond after rounding to the microsecond: a time parsed from text
        // written here (seconds plus a decimal fraction) can land a hair below its millisecond,
        // and must format back to the same text.
        let interval = ((date.timeIntervalSince1970 * 1_000_000).rounded() / 1000).rounded(.down)
        let milliseconds = interval.isNaN ? 0 : Int64(max(Double(earliest), min(Double(latest), interval)))
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

    /// Whether `text` is exactly what `format` writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`, a real date,
    /// no leap second) in the years 1900–2200, where a Double holds microseconds exactly, so
    /// that `format(parse(text)!) == text`: stored times are, and response writers copy such
    /// text instead of parsing and formatting it again.
    public static func isCanonical(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes -> Bool in
            guard bytes.count == 24, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
                  bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "."),
                  bytes[23] == UInt8(ascii: "Z") else { return false }
            func number(_ range: Range<Int>) -> Int? {
                var value = 0
                for index in range {
                    guard (0x30...0x39).contains(bytes[index]) else { return nil }
                    value = value * 10 + Int(bytes[index] - 0x30)
                }
                return value
            }
            guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
                  let minute = number(14..<16), let second = number(17..<19), number(20..<23) != nil else { return false }
            return (1900...2200).contains(year) && (1...12).contains(month) && (1...daysIn(month: month, year: year)).contains(day) && hour <= 23 && minute <= 59 && second <= 59
        }
    }

    /// The current time, formatted.
    public static func now() -> String { format(Date()) }

    /// The instant `text` names, or nil when it is not an RFC 3339 date-time (section 5.6): `T`
    /// or `t`, `Z`, `z` or a numeric offset, any number of fraction digits. Reads what `format`
    /// writes and whatever a client may send in a filter.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 64 else { return nil }
        func digits(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = digits(0..<4), bytes[4] == UInt8(ascii: "-"), let month = digits(5..<7), bytes[7] == UInt8(ascii: "-"),
              let day = digits(8..<10), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
              let hour = digits(11..<13), bytes[13] == UInt8(ascii: ":"), let minute = digits(14..<16), bytes[16] == UInt8(ascii: ":"),
              let second = digits(17..<19) else { return nil }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day), hour <= 23, minute <= 59, second <= 60 else {
            return nil
        }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            let start = index + 1
            index = start
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > start else { return nil }
            fraction = Double("0." + String(decoding: bytes[start..<index], as: UTF8.self)) ?? 0
        }
        guard index < bytes.count else { return nil }
        var offset = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard let offsetHour = digits((index + 1)..<(index + 3)), index + 3 < bytes.count, bytes[index + 3] == UInt8(ascii: ":"),
                  let offsetMinute = digits((index + 4)..<(index + 6)), offsetHour <= 23, offsetMinute <= 59 else { return nil }
            offset = (offsetHour * 60 + offsetMinute) * 60 * (bytes[index] == UInt8(ascii: "-") ? -1 : 1)
            index += 6
        default:
            return nil
        }
        guard index == bytes.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(min(second, 59))
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(seconds - offset) + fraction + (second == 60 ? 1 : 0))
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
