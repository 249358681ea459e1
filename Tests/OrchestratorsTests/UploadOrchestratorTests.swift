import Clients
import Foundation
import KubinModel
import Logging
import NIOCore
import TestSupport
import Testing

@testable import Orchestrators

@Suite struct UploadOrchestratorTests {
    let prod = ClusterName(validating: "prod")!

    /// An orchestrator over fresh stores, 10 slots (`perPrincipal` of them for one caller), bodies paced on `clock`
    /// (30 s to start or pause, 1 KiB/s at least).
    func withOrchestrator(
        maxConcurrent: Int = 10, perPrincipal: Int = 10, maxBytes: Int64 = 1 << 20, clock: ManualClock = ManualClock(),
        metadata: ((SQLiteMetadataStore) -> any SnapshotStore)? = nil,
        _ body: (UploadOrchestrator, Stores) async throws -> Void
    ) async throws {
        let configuration = UploadOrchestrator.Configuration(
            maxConcurrent: maxConcurrent, maxConcurrentPerPrincipal: perPrincipal, maxBytes: maxBytes,
            retryAfterSeconds: 3, bodyTimeout: .seconds(30), minBytesPerSecond: 1024)
        try await Stores.with { stores in
            let orchestrator = UploadOrchestrator(
                configuration: configuration, metadata: metadata?(stores.metadata) ?? stores.metadata,
                objects: stores.objects, clock: PaceClock(clock))
            try await body(orchestrator, stores)
        }
    }

    func request(
        _ key: String? = nil, declared: Int? = nil, cluster: String = "prod", principal: String = "default/tester"
    ) -> UploadOrchestrator.Request {
        .init(
            tenant: .legacy, principal: principal, cluster: ClusterName(validating: cluster)!, idempotencyKey: key,
            declaredLength: declared.map(Int64.init))
    }

    @Test func storesTheBytesAndRecordsTheSnapshot() async throws {
        try await withOrchestrator { uploads, stores in
            let bytes = jsonBody(10_000)
            let accepted = try await uploads.upload(
                request(declared: bytes.count), body: TestBody(bytes, chunkSize: 777), logger: Logger(label: "test"))
            let snapshot = accepted.snapshot
            #expect(!accepted.isReplay)
            #expect(snapshot.status == .stored && snapshot.format == .json && snapshot.cluster == prod)
            #expect(snapshot.sizeBytes == Int64(bytes.count))
            #expect(snapshot.sha256 == sha256Hex(bytes))
            #expect(try await stores.metadata.snapshot(snapshot.id) == snapshot)
            var stored: [UInt8] = []
            try await stores.objects.read(.archive(of: snapshot.id), range: nil) {
                stored += $0.readableBytesView
            }
            #expect(stored == bytes)
            #expect(uploads.uploadsInFlight == 0)
        }
    }

    @Test func detectsTheFormatFromTheFirstBytes() async throws {
        try await withOrchestrator { uploads, _ in
            let gzip: [UInt8] = [0x1F, 0x8B, 0x08, 0x00] + [UInt8](repeating: 7, count: 100)
            let zip: [UInt8] = [0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 7, count: 100)
            // One byte per chunk: detection must gather bytes across chunks.
            for (bytes, format) in [(gzip, SnapshotFormat.gzip), (zip, .zip), (Array("  \n{}".utf8), .json)] {
                let accepted = try await uploads.upload(
                    request(), body: TestBody(bytes, chunkSize: 1), logger: Logger(label: "test"))
                #expect(accepted.snapshot.format == format)
            }
        }
    }

    @Test(arguments: [Array("hello world".utf8), [], Array("ustar archive".utf8)])
    func refusesAnUnknownFormatAndStoresNothing(_ bytes: [UInt8]) async throws {
        try await withOrchestrator { uploads, stores in
            await #expect {
                _ = try await uploads.upload(request(), body: TestBody(bytes), logger: Logger(label: "test"))
            } throws: {
                ($0 as? KubinError)?.code == .unsupportedFormat
            }
            #expect(stores.storedFiles.isEmpty)
            let count = try await stores.snapshotCount
            #expect(count == 0)
        }
    }

    @Test func refusesADeclaredOversizeWithoutReadingTheBody() async throws {
        try await withOrchestrator(maxBytes: 1000) { uploads, stores in
            let probe = ReadProbe()
            await #expect {
                _ = try await uploads.upload(
                    request(declared: 1001), body: TestBody(jsonBody(1001), probe: probe), logger: Logger(label: "test")
                )
            } throws: { ($0 as? KubinError)?.code == .payloadTooLarge }
            #expect(!probe.isRead)
            #expect(stores.storedFiles.isEmpty)
        }
    }

    @Test func stopsAnUndeclaredOversizeMidStreamAndRemovesThePartialObject() async throws {
        try await withOrchestrator(maxBytes: 5000) { uploads, stores in
            await #expect {
                _ = try await uploads.upload(request(), body: TestBody(jsonBody(20_000)), logger: Logger(label: "test"))
            } throws: {
                ($0 as? KubinError)?.code == .payloadTooLarge
            }
            #expect(stores.storedFiles.isEmpty)
            let count = try await stores.snapshotCount
            #expect(count == 0)
            // Exactly the limit is fine.
            _ = try await uploads.upload(request(), body: TestBody(jsonBody(5000)), logger: Logger(label: "test"))
        }
    }

    @Test func admitsAtMostTheLimitAndRefusesTheNextAtOnce() async throws {
        try await withOrchestrator(maxConcurrent: 3) { uploads, stores in
            let release = Gate()
            try await withThrowingTaskGroup(of: UploadOrchestrator.Accepted.self) { group in
                for index in 0..<3 {
                    let started = Gate()
                    group.addTask {
                        try await uploads.upload(
                            self.request(),
                            body: TestBody(jsonBody(3000, seed: index), started: started, gate: release),
                            logger: Logger(label: "test"))
                    }
                    await started.wait()
                }
                #expect(uploads.uploadsInFlight == 3)
                let probe = ReadProbe()
                await #expect {
                    _ = try await uploads.upload(
                        self.request(), body: TestBody(jsonBody(10), probe: probe), logger: Logger(label: "test"))
                } throws: {
                    let error = $0 as? KubinError
                    return error?.code == .tooManyUploads && error?.retryAfterSeconds == 3
                }
                #expect(!probe.isRead, "a refused upload's body is not read")
                release.open()
                var completed = 0
                for try await _ in group { completed += 1 }
                #expect(completed == 3)
            }
            #expect(uploads.uploadsInFlight == 0)
            let count = try await stores.snapshotCount
            #expect(count == 3)
            // The slots were given back.
            _ = try await uploads.upload(request(), body: TestBody(jsonBody(10)), logger: Logger(label: "test"))
        }
    }

    @Test func anIdempotentRetryReturnsTheFirstAnswerAndStoresNothingNew() async throws {
        try await withOrchestrator { uploads, stores in
            let bytes = jsonBody(4000)
            let first = try await uploads.upload(request("key-1"), body: TestBody(bytes), logger: Logger(label: "test"))
            let filesAfterFirst = stores.storedFiles
            let retry = try await uploads.upload(
                request("key-1"), body: TestBody(bytes, chunkSize: 333), logger: Logger(label: "test"))
            #expect(retry.isReplay)
            #expect(retry.snapshot == first.snapshot)
            #expect(stores.storedFiles == filesAfterFirst)
            let count = try await stores.snapshotCount
            #expect(count == 1)
            for (body, cluster) in [(jsonBody(4000, seed: 1), "prod"), (bytes, "staging")] {
                await #expect {
                    _ = try await uploads.upload(
                        self.request("key-1", cluster: cluster), body: TestBody(body), logger: Logger(label: "test"))
                } throws: {
                    ($0 as? KubinError)?.code == .idempotencyKeyReused
                }
            }
            #expect(stores.storedFiles == filesAfterFirst)
            let finalCount = try await stores.snapshotCount
            #expect(finalCount == 1)
        }
    }

    @Test func concurrentUploadsWithOneKeyStoreOnce() async throws {
        try await withOrchestrator { uploads, stores in
            let bytes = jsonBody(50_000)
            let release = Gate()
            let results = try await withThrowingTaskGroup(of: UploadOrchestrator.Accepted.self) { group in
                for _ in 0..<6 {
                    let started = Gate()
                    group.addTask {
                        try await uploads.upload(
                            self.request("same"), body: TestBody(bytes, started: started, gate: release),
                            logger: Logger(label: "test"))
                    }
                    await started.wait()
                }
                // All six have looked the key up (none was there) and are streaming: they race to record it.
                release.open()
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(results.map(\.snapshot.id)).count == 1)
            #expect(results.filter { !$0.isReplay }.count == 1)
            #expect(stores.storedFiles.count == 1, "the losers' archives were removed: \(stores.storedFiles)")
        }
    }

    @Test func cancellingAfterTheArchiveIsStoredLeavesNothing() async throws {
        let gate = InsertGate()
        try await withOrchestrator(metadata: { BlockingSnapshotStore(base: $0, gate: gate) }) { uploads, stores in
            await withThrowingTaskGroup(of: UploadOrchestrator.Accepted.self) { group in
                group.addTask {
                    try await uploads.upload(
                        self.request(), body: TestBody(jsonBody(3000)), logger: Logger(label: "test"))
                }
                await gate.entered.wait()  // the archive is in place; the row is being written
                #expect(stores.storedFiles.count == 1)
                group.cancelAll()
                gate.release.open()
                await #expect(throws: (any Error).self) { _ = try await group.next() }
            }
            #expect(stores.storedFiles.isEmpty, "\(stores.storedFiles)")
            let count = try await stores.snapshotCount
            #expect(count == 0)
        }
    }

    @Test func aBrokenClientStreamLeavesNothing() async throws {
        struct ConnectionReset: Error {}
        try await withOrchestrator { uploads, stores in
            await #expect {
                _ = try await uploads.upload(
                    request(), body: TestBody(jsonBody(9000), failure: ConnectionReset()), logger: Logger(label: "test")
                )
            } throws: {
                ($0 as? KubinError)?.code == .incompleteBody
            }
            await #expect {
                _ = try await uploads.upload(
                    request(declared: 9001), body: TestBody(jsonBody(9000)), logger: Logger(label: "test"))
            } throws: {
                ($0 as? KubinError)?.code == .incompleteBody
            }
            #expect(stores.storedFiles.isEmpty)
            let count = try await stores.snapshotCount
            #expect(count == 0)
        }
    }

    /// A body that sends its first bytes, then nothing until it is cancelled.
    struct StallingBody: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let first: [UInt8]
        func makeAsyncIterator() -> Iterator { Iterator(first: first) }
        struct Iterator: AsyncIteratorProtocol {
            var first: [UInt8]?
            mutating func next() async throws -> ByteBuffer? {
                if let bytes = first {
                    first = nil
                    return ByteBuffer(bytes: bytes)
                }
                try await Task.sleep(for: .seconds(3600))
                return nil
            }
        }
    }

    /// A body that stops sending runs out of its pace: 408 once the clock passes the body time-out, nothing kept,
    /// and its slot free again.
    @Test(.timeLimit(.minutes(1))) func aStalledBodyIsCutOffAtItsPaceAndLeavesNothing() async throws {
        let clock = ManualClock()
        try await withOrchestrator(maxConcurrent: 1, clock: clock) { uploads, stores in
            async let stalled: KubinError.Code? = {
                do {
                    _ = try await uploads.upload(
                        request(), body: StallingBody(first: Array(jsonBody(2000).prefix(1500))),
                        logger: Logger(label: "t"))
                    return nil
                } catch {
                    return (error as? KubinError)?.code
                }
            }()
            // 1500 bytes earn 1.46 s at 1 KiB/s beyond the 30 s to start: the deadline is 30 s after them.
            try await clock.waitForSleepers(1)
            clock.advance(by: .seconds(29))
            #expect(uploads.uploadsInFlight == 1, "still within its time")
            clock.advance(by: .seconds(2))
            #expect(await stalled == .requestTimeout)
            #expect(uploads.uploadsInFlight == 0)
            #expect(stores.storedFiles.isEmpty)
            let accepted = try await uploads.upload(
                request(), body: TestBody(jsonBody(2000)), logger: Logger(label: "t"))
            #expect(accepted.snapshot.sizeBytes == 2000, "the slot is free again")
        }
    }

    @Test func aMetadataFailureRemovesTheStoredObject() async throws {
        let failures = FailureSwitch()
        try await withOrchestrator(metadata: { FailingSnapshotStore(base: $0, failInserts: failures) }) {
            uploads, stores in
            failures.set(true)
            await #expect {
                _ = try await uploads.upload(request(), body: TestBody(jsonBody(3000)), logger: Logger(label: "test"))
            } throws: {
                ($0 as? KubinError)?.code == .dependencyUnavailable
            }
            #expect(stores.storedFiles.isEmpty)
            failures.set(false)
            _ = try await uploads.upload(request(), body: TestBody(jsonBody(3000)), logger: Logger(label: "test"))
            #expect(stores.storedFiles.count == 1)
        }
    }
}

@Suite struct UploadPaceTests {
    @Test func aBodyFasterThanTheRateNeverRunsOutOfTime() {
        var pace = UploadPace(timeout: .seconds(30), minBytesPerSecond: 1000)
        #expect(pace.deadline == .seconds(30), "the first bytes within the time-out")
        for second in 1...600 {
            pace.received(2000, at: .seconds(second))
            #expect(pace.deadline > .seconds(second), "second \(second)")
            #expect(pace.deadline == .seconds(second + 30), "the gap rule binds while the rate is kept")
        }
    }

    @Test func aTrickleRunsOutOfTimeHoweverRegular() {
        var pace = UploadPace(timeout: .seconds(30), minBytesPerSecond: 1000)
        var second = 0
        while pace.deadline > .seconds(second) {
            second += 5
            pace.received(1, at: .seconds(second))
        }
        #expect(second == 35, "a byte every 5 s earns nothing: cut at the time-out, not at the next gap")
        #expect(pace.deadline == .microseconds(30_007_000))
    }

    @Test func withoutARateOnlyGapsCount() {
        var pace = UploadPace(timeout: .seconds(2), minBytesPerSecond: 0)
        pace.received(1, at: .seconds(100))
        #expect(pace.deadline == .seconds(102))
    }
}
