import Foundation
import KubinModel
import NIOCore
import TestSupport
import Testing

@testable import Orchestrators

/// Records everything a reader reports.
struct RecordingSink: SnapshotSink {
    var lists: [ParsedList] = []
    var lines: [LogStreamKey: [LogLine]] = [:]
    var fetchErrors: [LogStreamKey: String] = [:]
    var lastProgress: (bytes: Int64, entries: Int) = (0, 0)

    mutating func list(_ list: ParsedList) async throws { lists.append(list) }
    mutating func logLines(_ lines: [LogLine], of stream: LogStreamKey) async throws {
        self.lines[stream, default: []] += lines
    }
    mutating func logFetchError(_ message: String, of stream: LogStreamKey) async throws {
        fetchErrors[stream] = message
    }
    mutating func progress(bytesRead: Int64, entriesRead: Int) async throws {
        #expect(bytesRead >= lastProgress.bytes && entriesRead >= lastProgress.entries, "progress only grows")
        lastProgress = (bytesRead, entriesRead)
    }

    var resources: [ResourceRecord] { lists.flatMap { $0.items.map(\.extracted.resource) } }
    var pods: [PodRecord] { lists.flatMap { $0.items.compactMap(\.extracted.pod) } }
    var events: [EventRecord] { lists.flatMap { $0.items.compactMap(\.extracted.event) } }
}

func readSnapshot(
    _ bytes: [UInt8], _ format: SnapshotFormat, limits: SnapshotReader.Limits = .init()
) async throws -> RecordingSink {
    var sink = RecordingSink()
    let reference =
        LogTimestamp.epochSeconds(year: 2022, month: 11, day: 30, hour: 0, minute: 0, second: 0)! * 1_000_000
    try await SnapshotReader(limits: limits, referenceMicros: reference).read(
        format, from: MemoryBytes(bytes: bytes), into: &sink)
    return sink
}

@Suite struct SnapshotReaderTests {
    @Test(arguments: [
        ("directory", "tar.gz", SnapshotFormat.gzip), ("directory", "zip", .zip), ("stdout", "tar.gz", .json),
    ])
    func readsEveryGeneratedFormExactly(_ form: String, _ archive: String, _ format: SnapshotFormat) async throws {
        let dump = try GeneratedDump(form: form, archive: archive, seed: 11, namespaces: 4)
        let (bytes, summary) = (dump.bytes, dump.summary)
        let sink = try await readSnapshot(bytes, format)
        try checkGenerated(sink, summary, namespaces: 4)
        // Sequential forms are read once; a zip's directory is read before its entries.
        #expect(
            format == .zip
                ? sink.lastProgress.bytes >= Int64(bytes.count) : sink.lastProgress.bytes == Int64(bytes.count))
    }

    @Test func readsAGzippedStdoutDump() async throws {
        let dump = try GeneratedDump(form: "stdout", archive: "tar.gz", seed: 12)
        let (plain, summary) = (dump.bytes, dump.summary)
        let compressed = try python(
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read()))", input: plain)
        try checkGenerated(try await readSnapshot(compressed, .gzip), summary, namespaces: 3)
    }

    func checkGenerated(_ sink: RecordingSink, _ summary: [String: Int], namespaces: Int) throws {
        #expect(sink.lists.count == 1 + namespaces * 7)
        #expect(sink.pods.count == summary["pods"])
        #expect(Set(sink.pods.map(\.namespace)).count == namespaces)
        #expect(sink.resources.filter { $0.kind == "Node" }.count == 2)
        #expect(sink.fetchErrors.count == summary["log_errors"])
        #expect(sink.fetchErrors.values.allSatisfy { $0.hasPrefix("Request log error:") })
        #expect(sink.lines.values.map(\.count).reduce(0, +) == summary["log_lines"])
        #expect(sink.lines.count + sink.fetchErrors.count == summary["containers"])
        let podNames = Set(sink.pods.map { "\($0.namespace)/\($0.name)" })
        let logged = Set((Array(sink.lines.keys) + Array(sink.fetchErrors.keys)).map { "\($0.namespace)/\($0.pod)" })
        #expect(logged.subtracting(podNames).count == summary["orphan_pods"], "orphans: pods with logs but no object")
        // Every line is numbered from 1 without gaps, and most carry a timestamp.
        for lines in sink.lines.values { #expect(lines.map(\.number) == Array(1...lines.count)) }
        #expect(
            sink.lines.values.flatMap { $0 }.filter { $0.timestampMicros != nil }.count == summary["timestamped_lines"])
        #expect(!sink.lines.values.flatMap { $0 }.contains { $0.text.contains("==== END") })
        #expect(sink.events.filter { $0.type == "Warning" }.count == 1)
    }

    @Test func readsTheRealSupportBundle() async throws {
        let root = URL(fileURLWithPath: sampleBundle).deletingLastPathComponent().path
        let archive = try python(
            "import io,sys,tarfile; b=io.BytesIO(); t=tarfile.open(fileobj=b, mode='w:gz'); t.add('\(root)', arcname='support-bundle'); t.close(); "
                + "sys.stdout.buffer.write(b.getvalue())")
        let sink = try await readSnapshot(archive, .gzip)

        // Expectations read independently from the files.
        var expectedPods = 0
        for file in regularFiles(under: sampleBundle + "/pods") where !file.contains("/") {
            let list = try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: sampleBundle + "/pods/" + file)))
            expectedPods += ((list as? [String: Any])?["items"] as? [Any])?.count ?? 0
        }
        #expect(sink.pods.count == expectedPods)
        #expect(sink.events.count == 67)
        #expect(sink.resources.filter { $0.kind == "Namespace" }.count == 9)
        #expect(sink.resources.filter { $0.kind == "Node" }.count == 3)
        #expect(sink.lines.count == 7)
        let previous = try #require(
            sink.lines[
                LogStreamKey(namespace: "velero", pod: "velero-6996dd565b-xl44t", container: "velero", isPrevious: true)
            ])
        #expect(previous.count == 3 && previous[0].text.contains("unknown command"))
        let logDirectory = sampleBundle + "/pods/logs/velero/velero-6996dd565b-xl44t"
        let expectedLines = try regularFiles(under: logDirectory).map {
            try String(contentsOfFile: logDirectory + "/" + $0, encoding: .utf8).split(
                separator: "\n", omittingEmptySubsequences: false
            )
            .dropLast().count
        }.reduce(0, +)
        #expect(sink.lines.values.map(\.count).reduce(0, +) == expectedLines)
        #expect(sink.lists.allSatisfy { $0.skippedItems == 0 })
        // Items keep their original bytes.
        let raw = try #require(
            sink.lists.flatMap(\.items).first { $0.extracted.resource.name == "velero-6996dd565b-xl44t" }?.raw)
        let object = try JSONSerialization.jsonObject(with: Data(raw.readableBytesView)) as? [String: Any]
        #expect((object?["metadata"] as? [String: Any])?["name"] as? String == "velero-6996dd565b-xl44t")
    }

    /// A List of pods without `kind`s (as a cluster-info dump writes them), `count` of them, with the List's own
    /// `kind` before or after its items.
    private static func podList(_ count: Int, kindFirst: Bool) -> [UInt8] {
        let items = (0..<count).map {
            #"{"metadata":{"name":"p\#($0)","namespace":"default","uid":"u\#($0)"},"status":{"phase":"Running"}}"#
        }
        let body = #""items":["# + items.joined(separator: ",") + "]"
        return Array((kindFirst ? #"{"kind":"PodList","# + body + "}" : "{" + body + #","kind":"PodList"}"#).utf8)
    }

    /// However many items a document holds, the sink gets them a bounded batch at a time, in order: a batch goes
    /// once `itemsPerBatch` items or `batchBytes` bytes are pending, checked every 16 KiB of input (so it holds at
    /// most that much more).
    @Test(arguments: [SnapshotFormat.json, .gzip])
    func aLargeListReachesTheSinkInBoundedBatches(_ format: SnapshotFormat) async throws {
        let list = Self.podList(2500, kindFirst: true)
        let bytes = format == .json ? list : try Self.gzippedDump(pods: list)
        let slice = 16 << 10
        var limits = SnapshotReader.Limits()
        limits.itemsPerBatch = 1000
        let byCount = try await readSnapshot(bytes, format, limits: limits)
        let counts = byCount.lists.filter { $0.source.hasSuffix("pods.json") || format == .json }.map(\.items.count)
        let itemBytes = byCount.lists.flatMap(\.items).map(\.raw.readableBytes).max() ?? 1
        #expect(counts.reduce(0, +) == 2500)
        #expect(counts.dropLast().allSatisfy { $0 >= 1000 && $0 <= 1000 + slice / itemBytes + 1 }, "\(counts)")
        #expect(byCount.pods.map(\.name) == (0..<2500).map { "p\($0)" })

        limits.batchBytes = 10 << 10
        let byBytes = try await readSnapshot(bytes, format, limits: limits)
        let sizes = byBytes.lists.map { $0.items.reduce(0) { $0 + $1.raw.readableBytes } }
        #expect(sizes.count > 10)
        #expect(sizes.allSatisfy { $0 <= (10 << 10) + slice + itemBytes }, "\(sizes)")
        #expect(byBytes.pods.count == 2500)
    }

    /// A directory-form dump holding `pods` as its one namespace's pods.json.
    private static func gzippedDump(pods: [UInt8]) throws -> [UInt8] {
        var writer = TarWriter()
        writer.add("dump/nodes.json", Array(#"{"kind":"NodeList","items":[]}"#.utf8))
        writer.add("dump/default/pods.json", pods)
        writer.finish()
        return try python(
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read()))", input: writer.bytes)
    }

    /// Items whose List names its `kind` only after them wait for it (up to `maxPendingBytes`), and are then read
    /// as what the List says they are.
    @Test func itemsWaitForAKindThatFollowsThem() async throws {
        var limits = SnapshotReader.Limits()
        limits.itemsPerBatch = 100
        let sink = try await readSnapshot(Self.podList(1000, kindFirst: false), .json, limits: limits)
        #expect(sink.pods.count == 1000)
        #expect(sink.lists.count == 1, "nothing could go before the kind was known")
        #expect(sink.lists.first?.items.count == 1000)
    }

    @Test func aRefusedEntryFailsTheWholeSnapshot() async throws {
        var writer = TarWriter()
        writer.add("dump/nodes.json", Array(#"{"kind":"NodeList","items":[]}"#.utf8))
        writer.add("dump/evil", [], type: "2", linkTarget: "/etc/shadow")
        writer.finish()
        let compressed = try python(
            "import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read()))", input: writer.bytes)
        await #expect { _ = try await readSnapshot(compressed, .gzip) } throws: {
            ($0 as? ArchiveError)?.kind == .refusedEntry
        }
        var limits = SnapshotReader.Limits()
        limits.maxItemBytes = 10
        await #expect {
            _ = try await readSnapshot(Array(#"{"kind":"NodeList","items":[]}"#.utf8), .json, limits: limits)
        } throws: {
            ($0 as? ArchiveError)?.kind == .limitExceeded
        }
    }
}
