import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport

/// Yields buffers one by one with no known length, so the client sends the body chunked.
struct StreamedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [ByteBuffer]
    func makeAsyncIterator() -> IndexingIterator<[ByteBuffer]>.Async { .init(base: chunks.makeIterator()) }
}

extension IndexingIterator {
    /// A synchronous iterator as an asynchronous one.
    struct Async: AsyncIteratorProtocol {
        var base: IndexingIterator
        mutating func next() async -> Element? { base.next() }
    }
}
