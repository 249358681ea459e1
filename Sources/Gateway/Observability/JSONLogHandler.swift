import Clients
import Foundation
import KubinSupport
import Logging
import NIOCore
import Synchronization

/// A swift-log handler writing one JSON object per line to standard output: `timestamp`, `level`, `message`,
/// `logger`, then every metadata field (request scoped ones such as `request_id` included). Integers, floating-point
/// numbers and booleans given as `.stringConvertible` stay JSON numbers and booleans.
package struct JSONLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    package var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let sink: @Sendable (String) -> Void

    /// Creates a handler for `label` writing lines to `sink` (standard output by default).
    package init(
        label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil,
        sink: @escaping @Sendable (String) -> Void = JSONLogHandler.standardOutput
    ) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.sink = sink
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        var line = "{\"timestamp\":\"\(Date().formatted(Self.timestampStyle))\",\"level\":\"\(event.level)\","
        line += "\"message\":\(Self.quoted(event.message.description)),\"logger\":\(Self.quoted(label))"
        for key in fields.keys.sorted() where !["timestamp", "level", "message", "logger"].contains(key) {
            line += ",\(Self.quoted(key)):\(Self.json(fields[key]!))"
        }
        line += "}\n"
        sink(line)
    }

    /// Writes each line with one `write(2)`, under a lock, so concurrent lines never interleave.
    package static let standardOutput: @Sendable (String) -> Void = { line in
        outputLock.withLock { _ in
            var line = line
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { return }
                    offset += written
                }
            }
        }
    }

    private static let outputLock = Mutex(())
    private static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): quoted(text)
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as Int: String(number)
            case let number as Double where number.isFinite: String(number)
            case let flag as Bool: String(flag)
            default: quoted(convertible.description)
            }
        case .array(let values): "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let fields):
            "{" + fields.keys.sorted().map { "\(quoted($0)):\(json(fields[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// `text` as a JSON string literal (the escaping the ClickHouse writer uses too).
    static func quoted(_ text: String) -> String {
        var buffer = ByteBuffer()
        JSONText.appendString(text, to: &buffer)
        return String(buffer: buffer)
    }
}
