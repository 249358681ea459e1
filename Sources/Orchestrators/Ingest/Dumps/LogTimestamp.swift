import KubinSupport

/// Recognises the timestamp at the start of (or inside) a log line, as microseconds since 1970 (UTC).
///
/// Formats, tried in this order: CRI (`2022-11-29T20:55:22.82649547Z stderr F msg`), an RFC 3339 prefix (`T` or a
/// space between date and time, `Z` or an offset, or neither for UTC), klog (`I1129 20:55:22.826495 ...`, no year:
/// the year is the snapshot's, or the one before when that puts the line in the future), a JSON object's `ts` (Unix
/// seconds or milliseconds, or RFC 3339 text), `time` or `timestamp`, and logfmt `time=`. Hand-written scanners over
/// bytes: this runs on every log line.
package enum LogTimestamp {
    /// The timestamp of `line`, or nil. `referenceMicros` is the snapshot's time, for klog's missing year.
    package static func parse(_ line: some Collection<UInt8>, referenceMicros: Int64) -> Int64? {
        parse(Array(line.prefix(4096)), referenceMicros: referenceMicros)
    }

    /// The timestamp of `line`, or nil; only its first 4096 bytes are looked at. No copy when it is that short.
    package static func parse(_ line: [UInt8], referenceMicros: Int64) -> Int64? {
        line.withUnsafeBytes { parse(raw: $0, referenceMicros: referenceMicros) }
    }

    /// The timestamp of the line in `raw`, or nil; only its first 4096 bytes are looked at. Works on the bytes in
    /// place: this runs on every log line.
    package static func parse(raw line: UnsafeRawBufferPointer, referenceMicros: Int64) -> Int64? {
        let bytes = UnsafeRawBufferPointer(rebasing: line.prefix(4096))
        if let (micros, _) = rfc3339(bytes, at: 0) { return micros }
        if let micros = klog(bytes, referenceMicros: referenceMicros) { return micros }
        if bytes.first == UInt8(ascii: "{"), let micros = jsonField(bytes) { return micros }
        return logfmtTime(bytes)
    }

    /// A CRI log line: the time, the stream, whether it is a partial line (`P`), and where the message starts.
    package struct CRIPrefix: Equatable {
        /// The timestamp, in microseconds since 1970.
        package var micros: Int64
        /// `stdout` or `stderr`.
        package var stream: String
        /// True for `P`, a line split by the runtime, continued by the next.
        package var isPartial: Bool
        /// The offset of the `P` or `F` tag in the line.
        package var tagOffset: Int
        /// The offset of the message in the line.
        package var messageOffset: Int
    }

    /// The CRI prefix of `bytes`, when the line has one.
    package static func cri(_ bytes: [UInt8]) -> CRIPrefix? { bytes.withUnsafeBytes { cri(raw: $0) } }

    /// The CRI prefix of the line in `bytes`, when it has one.
    package static func cri(raw bytes: UnsafeRawBufferPointer) -> CRIPrefix? {
        guard let (micros, end) = rfc3339(bytes, at: 0), end < bytes.count, bytes[end] == UInt8(ascii: " ") else {
            return nil
        }
        var index = end + 1
        let streamStart = index
        while index < bytes.count, bytes[index] != UInt8(ascii: " ") { index += 1 }
        let stream = String(decoding: bytes[streamStart..<index], as: UTF8.self)
        guard stream == "stdout" || stream == "stderr", index + 2 <= bytes.count,
            bytes[index + 1] == UInt8(ascii: "P") || bytes[index + 1] == UInt8(ascii: "F"),
            index + 2 == bytes.count || bytes[index + 2] == UInt8(ascii: " ")
        else { return nil }
        return CRIPrefix(
            micros: micros, stream: stream, isPartial: bytes[index + 1] == UInt8(ascii: "P"), tagOffset: index + 1,
            messageOffset: min(bytes.count, index + 3))
    }

    /// An RFC 3339 date-time starting at `start`: its microseconds and the index after it.
    static func rfc3339(_ bytes: UnsafeRawBufferPointer, at start: Int) -> (Int64, Int)? {
        var index = start
        guard let year = digits(bytes, &index, 4), expect(bytes, &index, "-"), let month = digits(bytes, &index, 2),
            expect(bytes, &index, "-"), let day = digits(bytes, &index, 2), index < bytes.count,
            bytes[index] == UInt8(ascii: "T") || bytes[index] == UInt8(ascii: "t") || bytes[index] == UInt8(ascii: " ")
        else { return nil }
        index += 1
        guard let hour = digits(bytes, &index, 2), expect(bytes, &index, ":"), let minute = digits(bytes, &index, 2),
            expect(bytes, &index, ":"), let second = digits(bytes, &index, 2)
        else { return nil }
        let micros = fraction(bytes, &index)
        var offsetSeconds = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
            index += 1
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            var cursor = index + 1
            if let hours = digits(bytes, &cursor, 2), expect(bytes, &cursor, ":"),
                let minutes = digits(bytes, &cursor, 2)
            {
                offsetSeconds = sign * (hours * 3600 + minutes * 60)
                index = cursor
            }
        }
        guard
            let seconds = epochSeconds(
                year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        else { return nil }
        return ((seconds - Int64(offsetSeconds)) * 1_000_000 + micros, index)
    }

    /// klog: `Lmmdd hh:mm:ss.uuuuuu`, severity `I`, `W`, `E` or `F`.
    static func klog(_ bytes: UnsafeRawBufferPointer, referenceMicros: Int64) -> Int64? {
        guard bytes.count >= 21 else { return nil }
        switch bytes[0] {
        case UInt8(ascii: "I"), UInt8(ascii: "W"), UInt8(ascii: "E"), UInt8(ascii: "F"): break
        default: return nil
        }
        var index = 1
        guard let month = digits(bytes, &index, 2), let day = digits(bytes, &index, 2), expect(bytes, &index, " "),
            let hour = digits(bytes, &index, 2), expect(bytes, &index, ":"), let minute = digits(bytes, &index, 2),
            expect(bytes, &index, ":"), let second = digits(bytes, &index, 2)
        else { return nil }
        let micros = fraction(bytes, &index)
        guard index < bytes.count, bytes[index] == UInt8(ascii: " ") else { return nil }
        let referenceYear = civilYear(ofMicros: referenceMicros)
        for year in stride(from: referenceYear, through: referenceYear - 1, by: -1) {
            guard
                let seconds = epochSeconds(
                    year: year, month: month, day: day, hour: hour, minute: minute, second: second)
            else { return nil }
            let value = seconds * 1_000_000 + micros
            // A line from "the future" of the snapshot belongs to the year before (December logs in January).
            if value <= referenceMicros + 86_400_000_000 || year < referenceYear { return value }
        }
        return nil
    }

    /// `"ts"`, `"time"` or `"timestamp"` of a JSON object line: a number (Unix seconds, or milliseconds when large)
    /// or RFC 3339 text.
    static func jsonField(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        for key in jsonKeys {
            guard var index = find(key, in: bytes) else { continue }
            index += key.count
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { continue }
            index += 1
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
            guard index < bytes.count else { continue }
            if bytes[index] == UInt8(ascii: "\""), let (micros, _) = rfc3339(bytes, at: index + 1) { return micros }
            if let micros = epochNumber(bytes, at: index) { return micros }
        }
        return nil
    }

    /// logfmt `time=` (at the start or after a space), its value RFC 3339, quoted or not.
    static func logfmtTime(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        let key = logfmtKey
        var from = 0
        while let found = find(key, in: bytes, from: from) {
            defer { from = found + 1 }
            guard found == 0 || bytes[found - 1] == UInt8(ascii: " ") else { continue }
            var index = found + key.count
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") { index += 1 }
            if let (micros, _) = rfc3339(bytes, at: index) { return micros }
        }
        return nil
    }

    /// Unix time as a JSON number: seconds (with a fraction) or, above 1e11, milliseconds.
    private static func epochNumber(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Int64? {
        var index = start
        var whole: Int64 = 0
        var count = 0
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]), count < 16 {
            whole = whole * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
            index += 1
            count += 1
        }
        guard count > 0 else { return nil }
        let fractionMicros = fraction(bytes, &index)
        return whole > 100_000_000_000 ? whole * 1000 : whole * 1_000_000 + fractionMicros
    }

    /// `.123456789` → microseconds (extra digits dropped); advances past it.
    private static func fraction(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> Int64 {
        guard index < bytes.count, bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: ",") else {
            return 0
        }
        index += 1
        var micros: Int64 = 0
        var count = 0
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
            if count < 6 { micros = micros * 10 + Int64(bytes[index] - UInt8(ascii: "0")) }
            count += 1
            index += 1
        }
        for _ in min(count, 6)..<6 { micros *= 10 }
        return micros
    }

    private static func digits(_ bytes: UnsafeRawBufferPointer, _ index: inout Int, _ count: Int) -> Int? {
        guard index + count <= bytes.count else { return nil }
        var value = 0
        for offset in 0..<count {
            let byte = bytes[index + offset]
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        index += count
        return value
    }

    private static func expect(_ bytes: UnsafeRawBufferPointer, _ index: inout Int, _ character: Unicode.Scalar) -> Bool
    {
        guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
        index += 1
        return true
    }

    private static let jsonKeys = ["\"ts\"", "\"time\"", "\"timestamp\""].map { Array($0.utf8) }
    private static let logfmtKey = Array("time=".utf8)

    private static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer, from: Int = 0) -> Int? {
        guard haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        return (from...(haystack.count - needle.count)).first { start in
            haystack[start] == needle[0] && haystack[start..<(start + needle.count)].elementsEqual(needle)
        }
    }

    /// Seconds since 1970 of a UTC civil time; nil when a field is out of range.
    static func epochSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int64? {
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute),
            (0...60).contains(second)
        else { return nil }
        let days = CivilDays.days(year: Int64(year), month: Int64(month), day: Int64(day))
        return days * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// The UTC year of a time in microseconds since 1970.
    static func civilYear(ofMicros micros: Int64) -> Int {
        Int(CivilDays.date(ofDay: micros / 86_400_000_000).year)
    }
}
