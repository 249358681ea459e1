import NIOCore
import NIOFileSystem

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `pwritev(2)` of several byte buffers at a file offset, retried until every byte is written.
///
/// NIOFileSystem writes one buffer per call; gathering the network's chunks into one system call avoids copying them
/// into a larger buffer first. Runs on the handle's thread pool through `withUnsafeDescriptor`.
enum GatheredWrite {
    /// Writes `buffers` in order at `offset` of `handle`'s file; returns the bytes written (all of them).
    static func write(_ buffers: [ByteBuffer], at offset: Int64, to handle: WriteFileHandle) async throws -> Int64 {
        try await handle.withUnsafeDescriptor { descriptor in
            var vectors: [iovec] = []
            vectors.reserveCapacity(buffers.count)
            return try withVectors(buffers[...], &vectors) { vectors in
                try writeAll(descriptor: descriptor.rawValue, vectors: &vectors, offset: offset)
            }
        }
    }

    /// Collects the readable bytes of every buffer as `iovec`s, valid while `body` runs.
    private static func withVectors<Result>(
        _ buffers: ArraySlice<ByteBuffer>, _ vectors: inout [iovec], _ body: (inout [iovec]) throws -> Result
    ) throws -> Result {
        guard let first = buffers.first else { return try body(&vectors) }
        return try first.withUnsafeReadableBytes { bytes in
            vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count))
            return try withVectors(buffers.dropFirst(), &vectors, body)
        }
    }

    private static func writeAll(descriptor: Int32, vectors: inout [iovec], offset: Int64) throws -> Int64 {
        var written: Int64 = 0
        var first = 0
        while first < vectors.count {
            let count = Int32(min(vectors.count - first, 1024))  // IOV_MAX on Linux
            let result = vectors.withUnsafeBufferPointer { pointer in
                pwritev(descriptor, pointer.baseAddress! + first, count, off_t(offset + written))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw ObjectStoreError.io("pwritev failed: errno \(errno)")
            }
            written += Int64(result)
            // Skip what was written: whole vectors, then part of the next.
            var remaining = result
            while first < vectors.count, remaining >= vectors[first].iov_len {
                remaining -= vectors[first].iov_len
                first += 1
            }
            if remaining > 0 {
                vectors[first].iov_base += remaining
                vectors[first].iov_len -= remaining
            }
        }
        return written
    }
}
