/// CRC-32 (IEEE 802.3, as zip and gzip use it), slicing by 8 bytes. Written here because zlib's `crc32` is not exposed
/// by the compression package; tested against the standard check value and Python's `zlib.crc32`.
package struct CRC32: Sendable {
    /// The checksum of the bytes so far.
    package private(set) var value: UInt32 = 0
    private var state: UInt32 = 0xFFFF_FFFF

    /// A checksum of nothing yet.
    package init() {}

    /// Adds `bytes`.
    package mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = state
        var index = 0
        let count = bytes.count
        let table = Self.tables
        while count - index >= 8 {
            let one =
                UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16
                | UInt32(bytes[index + 3]) << 24 ^ crc
            let two =
                UInt32(bytes[index + 4]) | UInt32(bytes[index + 5]) << 8 | UInt32(bytes[index + 6]) << 16
                | UInt32(bytes[index + 7]) << 24
            crc =
                table[7][Int(one & 0xFF)] ^ table[6][Int((one >> 8) & 0xFF)] ^ table[5][Int((one >> 16) & 0xFF)]
                ^ table[4][Int(one >> 24)] ^ table[3][Int(two & 0xFF)] ^ table[2][Int((two >> 8) & 0xFF)]
                ^ table[1][Int((two >> 16) & 0xFF)] ^ table[0][Int(two >> 24)]
            index += 8
        }
        while index < count {
            crc = table[0][Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
            index += 1
        }
        state = crc
        value = crc ^ 0xFFFF_FFFF
    }

    private static let tables: [[UInt32]] = {
        var tables = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            tables[0][byte] = crc
        }
        for byte in 0..<256 {
            for slice in 1..<8 {
                let previous = tables[slice - 1][byte]
                tables[slice][byte] = (previous >> 8) ^ tables[0][Int(previous & 0xFF)]
            }
        }
        return tables
    }()
}
