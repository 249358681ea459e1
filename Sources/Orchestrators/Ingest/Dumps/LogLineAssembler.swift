import KubinModel
import NIOCore

/// Turns raw lines of one container's log into ``LogLine``s: numbers them, recognises timestamps, and joins CRI
/// partial lines (`P`) with the line that completes them (`F`).
package struct LogLineAssembler {
    private let referenceMicros: Int64
    private var partial: (prefix: String, message: [UInt8], micros: Int64)?
    private var number = 0

    /// Assembles lines of a snapshot taken at `referenceMicros` (for klog's missing year).
    package init(referenceMicros: Int64) { self.referenceMicros = referenceMicros }

    /// Adds one raw line; appends the completed lines to `output`.
    package mutating func feed(_ line: ByteBuffer, into output: inout [LogLine]) {
        line.withUnsafeReadableBytes { bytes in
            if let cri = LogTimestamp.cri(raw: bytes) {
                let message = bytes[cri.messageOffset...]
                if var pending = partial {
                    pending.message += message
                    partial = pending
                } else {
                    partial = (String(decoding: bytes[..<cri.tagOffset], as: UTF8.self), Array(message), cri.micros)
                }
                if !cri.isPartial { flush(into: &output) }
                return
            }
            flush(into: &output)
            number += 1
            output.append(
                LogLine(
                    number: number, text: String(decoding: bytes, as: UTF8.self),
                    timestampMicros: LogTimestamp.parse(raw: bytes, referenceMicros: referenceMicros)))
        }
    }

    /// Emits a partial line left open at the end of the log.
    package mutating func finish(into output: inout [LogLine]) { flush(into: &output) }

    private mutating func flush(into output: inout [LogLine]) {
        guard let pending = partial else { return }
        partial = nil
        number += 1
        output.append(
            LogLine(
                number: number,
                text: pending.prefix
                    + (pending.message.isEmpty ? "F" : "F " + String(decoding: pending.message, as: UTF8.self)),
                timestampMicros: pending.micros))
    }
}
