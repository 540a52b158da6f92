/// Server-assigned resource ids: a type prefix and 128 random bits in hex (`vm-3f2a…`).
public enum ResourceID {
    /// A new id such as `vm-0c9e4f6a1b2d3c4e5f60718293a4b5c6`.
    public static func make(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var out = Array(prefix.utf8) + [UInt8(ascii: "-")]
        for _ in 0..<2 {
            var word = generator.next() as UInt64
            for _ in 0..<16 {
                out.append(digits[Int(word & 0xf)])
                word >>= 4
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
