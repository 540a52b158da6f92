import Foundation
import BinderyStore
import OpenAPIRuntime

/// RFC 3339 `date-time` for the generated code: read with `Timestamp.parse` (every form the
/// grammar allows, as the contract's checks read them), written as the store writes them.
enum RFC3339 {
    /// The generated code's date transcoder: reads every RFC 3339 form, writes UTC with milliseconds.
    struct Transcoder: DateTranscoder {
        func encode(_ date: Date) throws -> String { Timestamp.format(date) }
        func decode(_ text: String) throws -> Date {
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(text) is not an RFC 3339 date-time"))
            }
            return date
        }
    }
}
