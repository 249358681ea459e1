/// Writes tar archives for tests: ustar headers, long names as pax records or GNU `L` entries, any entry type, and
/// base-256 sizes on request, so the reader is tested on what real writers produce.
package struct TarWriter {
    /// How names longer than the ustar field are written.
    package enum LongNames { case pax, gnu }

    /// The archive so far.
    package private(set) var bytes: [UInt8] = []
    private let longNames: LongNames

    /// An empty archive.
    package init(longNames: LongNames = .pax) { self.longNames = longNames }

    /// Adds an entry of `type` (`"0"` file, `"5"` directory, `"2"` symlink, ...) with `contents`.
    package mutating func add(
        _ path: String, _ contents: [UInt8] = [], type: Character = "0", linkTarget: String = "",
        base256Size: Bool = false
    ) {
        var name = path
        if path.utf8.count > 100 {
            switch longNames {
            case .pax:
                appendEntry(
                    header(name: "PaxHeader", size: paxRecord("path", path).count, type: "x"), paxRecord("path", path))
            case .gnu:
                let longName = Array(path.utf8) + [0]
                appendEntry(header(name: "././@LongLink", size: longName.count, type: "L"), longName)
            }
            name = String(path.suffix(90))
        }
        appendEntry(
            header(name: name, size: contents.count, type: type, linkTarget: linkTarget, base256Size: base256Size),
            contents)
    }

    /// Appends raw bytes (for corruption tests).
    package mutating func appendRaw(_ raw: [UInt8]) { bytes += raw }

    /// Ends the archive with two zero blocks.
    package mutating func finish() { bytes += [UInt8](repeating: 0, count: 1024) }

    private mutating func appendEntry(_ header: [UInt8], _ contents: [UInt8]) {
        bytes += header + contents + [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
    }

    private func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).utf8.count + body.utf8.count != length { length += 1 }
        return Array((String(length) + body).utf8)
    }

    private func header(
        name: String, size: Int, type: Character, linkTarget: String = "", base256Size: Bool = false
    ) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            put(
                String(repeating: "0", count: max(0, width - 1 - String(value, radix: 8).count))
                    + String(value, radix: 8), at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(0o644, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        if base256Size {
            header[124] = 0x80
            for index in 0..<8 { header[124 + 4 + index] = UInt8(truncatingIfNeeded: size >> (8 * (7 - index))) }
        } else {
            octal(size, at: 124, width: 12)
        }
        octal(1_669_752_000, at: 136, width: 12)
        header[156] = type.asciiValue!
        put(linkTarget, at: 157, width: 100)
        put("ustar\0", at: 257, width: 6)
        put("00", at: 263, width: 2)
        for index in 148..<156 { header[index] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        octal(sum, at: 148, width: 7)
        header[155] = UInt8(ascii: " ")
        return header
    }
}
