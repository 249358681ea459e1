import Crypto
import KubinModel
import KubinSupport
import NIOCore
import Synchronization

/// An upload body on its way to storage: replays the chunks read to sniff the format, then the rest; hashes and
/// counts every byte; stops with ``KubinError/Code/payloadTooLarge`` past the limit; and marks errors of the client's
/// stream as ``ClientStreamError`` so they are not mistaken for storage failures.
struct MeteredBody<Base: AsyncSequence<ByteBuffer, any Error>>: AsyncSequence {
    typealias Element = ByteBuffer
    typealias Failure = any Error

    /// What was read, available once the sequence has ended.
    final class Outcome: Sendable {
        fileprivate let result = Mutex<(size: Int64, sha256: String)?>(nil)
        /// Size and SHA-256 of every byte, or nil when the body did not end normally.
        var value: (size: Int64, sha256: String)? { result.withLock { $0 } }
    }

    private let replay: [ByteBuffer]
    private let base: Base.AsyncIterator
    private let limit: Int64
    let outcome = Outcome()

    /// `replay` are chunks already taken from `base`'s iterator.
    init(replay: [ByteBuffer], rest base: Base.AsyncIterator, limit: Int64) {
        self.replay = replay
        self.base = base
        self.limit = limit
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(replay: replay[...], base: base, limit: limit, outcome: outcome)
    }

    struct Iterator: AsyncIteratorProtocol {
        var replay: ArraySlice<ByteBuffer>
        var base: Base.AsyncIterator
        let limit: Int64
        let outcome: Outcome
        var hasher = SHA256()
        var size: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            let chunk: ByteBuffer?
            if let replayed = replay.popFirst() {
                chunk = replayed
            } else {
                do { chunk = try await base.next() } catch { throw ClientStreamError(underlying: error) }
            }
            guard let chunk else {
                // A cancelled read may end the stream early: that is not the body's end.
                try Task.checkCancellation()
                let digest = hasher.finalize()
                outcome.result.withLock { [size] in $0 = (size, digest.hexString) }
                return nil
            }
            size += Int64(chunk.readableBytes)
            guard size <= limit else {
                throw KubinError(.payloadTooLarge, "The upload is larger than the limit of \(limit) bytes.")
            }
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            return chunk
        }
    }
}

/// The client's stream failed (it disconnected or sent malformed framing), as opposed to the store.
struct ClientStreamError: Error { var underlying: any Error }
