import NIOCore

/// Bytes that can be read at any offset, such as a stored object (a zip's directory is at its end).
package protocol RandomAccessBytes: Sendable {
    /// The total size.
    var size: Int64 { get }
    /// The bytes of `range`, which lies within `0..<size`.
    func read(_ range: Range<Int64>) async throws -> ByteBuffer
}
