/// The few DNS messages upstream discovery needs (RFC 1035 §4, SRV from RFC 2782, AAAA from RFC 3596): a query for
/// one name and type, and the A, AAAA and SRV records of an answer. Written here because no DNS client library is
/// reachable from this package's mirror (NIO resolves through the system's `getaddrinfo` only, which cannot ask a
/// chosen server nor read SRV records); small and tested on its own.
package enum DNSMessage {
    /// The record types discovery asks for.
    package enum RecordType: UInt16, Sendable {
        case a = 1
        case aaaa = 28
        case srv = 33
    }

    /// One answer record.
    package enum Record: Sendable, Equatable {
        /// An address, as text (`10.0.0.7`, `fd00::7`).
        case address(String)
        case service(priority: UInt16, weight: UInt16, port: UInt16, target: String)
    }

    /// Why an answer was not read.
    package struct Malformed: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// A recursive query for `name`'s records of `type`, with `id`.
    package static func query(id: UInt16, name: String, type: RecordType) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(18 + name.utf8.count)
        append(id, to: &bytes)
        append(0x0100, to: &bytes)  // standard query, recursion desired
        append(1, to: &bytes)  // one question
        bytes += [0, 0, 0, 0, 0, 0]  // no answers, authorities, additionals
        for label in name.split(separator: ".") {
            guard (1...63).contains(label.utf8.count) else {
                throw Malformed(description: "'\(name)' has a label of \(label.utf8.count) bytes")
            }
            bytes.append(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        bytes.append(0)
        append(type.rawValue, to: &bytes)
        append(1, to: &bytes)  // class IN
        return bytes
    }

    /// The records of `type` in the answer section of `bytes`, which must answer query `id`. Throws on a malformed
    /// message, a failed answer (a `rcode` other than 0 or 3: a name that does not exist has no records) or a
    /// truncated one.
    package static func records(in bytes: [UInt8], id: UInt16, type: RecordType) throws -> [Record] {
        var reader = Reader(bytes: bytes)
        guard try reader.uint16() == id else { throw Malformed(description: "the answer is for another query") }
        let flags = try reader.uint16()
        guard flags & 0x8000 != 0 else { throw Malformed(description: "not an answer") }
        guard flags & 0x0200 == 0 else { throw Malformed(description: "the answer was truncated") }
        let rcode = flags & 0x000F
        guard rcode == 0 || rcode == 3 else { throw Malformed(description: "the server answered rcode \(rcode)") }
        let questions = try reader.uint16()
        let answers = try reader.uint16()
        _ = try reader.uint16()
        _ = try reader.uint16()
        for _ in 0..<questions {
            _ = try reader.name()
            _ = try reader.uint16()
            _ = try reader.uint16()
        }
        var records: [Record] = []
        for _ in 0..<answers {
            _ = try reader.name()
            let recordType = try reader.uint16()
            _ = try reader.uint16()  // class
            _ = try reader.uint32()  // TTL: discovery re-resolves on its own interval
            let length = Int(try reader.uint16())
            let end = reader.offset + length
            guard end <= bytes.count else { throw Malformed(description: "a record runs past the message") }
            switch (RecordType(rawValue: recordType), type) {
            case (.a, .a) where length == 4:
                records.append(.address(bytes[reader.offset..<end].map(String.init).joined(separator: ".")))
            case (.aaaa, .aaaa) where length == 16:
                records.append(.address(ipv6(Array(bytes[reader.offset..<end]))))
            case (.srv, .srv):
                let priority = try reader.uint16()
                let weight = try reader.uint16()
                let port = try reader.uint16()
                let target = try reader.name()
                records.append(.service(priority: priority, weight: weight, port: port, target: target))
            default:
                break  // a CNAME on the way, or another type: skipped
            }
            reader.offset = end
        }
        return records
    }

    /// RFC 5952 text: lower case, leading zeros dropped, the longest run of two or more zero groups as `::`.
    static func ipv6(_ bytes: [UInt8]) -> String {
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var best: Range<Int>?
        var start: Int?
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                start = start ?? index
            } else if let first = start {
                if index - first >= 2, index - first > (best?.count ?? 0) { best = first..<index }
                start = nil
            }
        }
        let text = { (range: Range<Int>) in
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard let best else { return text(0..<8) }
        return text(0..<best.lowerBound) + "::" + text(best.upperBound..<8)
    }

    private static func append(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func uint16() throws -> UInt16 {
            guard offset + 2 <= bytes.count else { throw Malformed(description: "the message ends early") }
            defer { offset += 2 }
            return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        }

        mutating func uint32() throws -> UInt32 {
            UInt32(try uint16()) << 16 | UInt32(try uint16())
        }

        /// A name, following compression pointers (each only backwards, so a loop cannot form).
        mutating func name() throws -> String {
            var labels: [String] = []
            var position = offset
            var resumeAt: Int?
            var limit = position
            while true {
                guard position < bytes.count else { throw Malformed(description: "a name runs past the message") }
                let length = Int(bytes[position])
                if length & 0xC0 == 0xC0 {
                    guard position + 1 < bytes.count else { throw Malformed(description: "a pointer is cut") }
                    let target = (length & 0x3F) << 8 | Int(bytes[position + 1])
                    guard target < limit else { throw Malformed(description: "a name pointer points forward") }
                    if resumeAt == nil { resumeAt = position + 2 }
                    position = target
                    limit = target
                    continue
                }
                guard length & 0xC0 == 0 else { throw Malformed(description: "an unknown label type") }
                position += 1
                if length == 0 { break }
                guard position + length <= bytes.count, labels.count < 128 else {
                    throw Malformed(description: "a label runs past the message")
                }
                labels.append(String(decoding: bytes[position..<(position + length)], as: UTF8.self))
                position += length
            }
            offset = resumeAt ?? position
            return labels.joined(separator: ".")
        }
    }
}
