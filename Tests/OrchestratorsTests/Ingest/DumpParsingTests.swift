import Foundation
import KubinModel
import NIOCore
import TestSupport
import Testing

@testable import Orchestrators

/// All lines of `text` through a LineReader fed in chunks of `chunkSize`.
func lines(of text: [UInt8], chunkSize: Int = 100, maxLineBytes: Int = 1 << 20) async throws -> [String] {
    var offset = 0
    let reader = LineReader(maxLineBytes: maxLineBytes) {
        guard offset < text.count else { return nil }
        defer { offset += chunkSize }
        return ByteBuffer(bytes: text[offset..<min(offset + chunkSize, text.count)])
    }
    var result: [String] = []
    while let line = try await reader.next() { result.append(String(buffer: line)) }
    return result
}

/// Splits a stdout-form dump into its documents and its log blocks (block → lines).
func splitStdoutDump(
    _ text: [UInt8]
) async throws -> (documents: [String], blocks: [(LogBlockSplitter.Block, [String])]) {
    var splitter = LogBlockSplitter()
    var document: (stream: JSONListStream, text: String)?
    var documents: [String] = []
    var blocks: [(LogBlockSplitter.Block, [String])] = []
    var events: [LogBlockSplitter.Event] = []
    var items: [[UInt8]] = []
    // A document starts at a line outside blocks whose first non-blank byte is '{', and ends when its List does.
    func feed(_ line: String) throws {
        if document == nil {
            guard line.first(where: { $0 != " " && $0 != "\t" }) == "{" else { return }
            document = (JSONListStream(maxItemBytes: 64 << 20), "")
        }
        try Array((line + "\n").utf8).withUnsafeBytes { try document?.stream.feed($0, into: &items) }
        document?.text += line + "\n"
        if let whole = document, whole.stream.isComplete {
            documents.append(whole.text)
            document = nil
        }
    }
    func handle(_ events: [LogBlockSplitter.Event]) throws {
        for event in events {
            switch event {
            case .start(let block): blocks.append((block, []))
            case .line(let line): blocks[blocks.count - 1].1.append(String(buffer: line))
            case .end: break
            case .outside(let line): try feed(String(buffer: line))
            }
        }
    }
    for line in try await lines(of: text, chunkSize: 777) {
        events.removeAll()
        if document != nil {
            try feed(line)
            continue
        }
        splitter.feed(ByteBuffer(string: line), into: &events)
        try handle(events)
    }
    events.removeAll()
    splitter.finish(into: &events)
    try handle(events)
    #expect(document == nil, "the dump ends inside no document")
    return (documents, blocks)
}

@Suite struct LineReaderTests {
    @Test func splitsAcrossChunksAndCutsEndlessLines() async throws {
        let text = Array("one\r\ntwo\n\nthree-without-newline".utf8)
        for size in [1, 2, 5, 100] {
            #expect(try await lines(of: text, chunkSize: size) == ["one", "two", "", "three-without-newline"])
        }
        let long = Array((String(repeating: "x", count: 5000) + "\nnext\n").utf8)
        #expect(
            try await lines(of: long, chunkSize: 64, maxLineBytes: 1000) == [
                String(repeating: "x", count: 1000), "next",
            ])
        #expect(try await lines(of: []) == [])
    }

    /// Pieces hand a long line over whole, in pieces of at most `maxLineBytes`; each line is counted once, cut or
    /// not.
    @Test func piecesHandALongLineOverWhole() async throws {
        let long = String(repeating: "x", count: 2500)
        let text = Array((long + "\nshort\n" + long + "\nend").utf8)
        var offset = 0
        let reader = LineReader(maxLineBytes: 1000) {
            guard offset < text.count else { return nil }
            defer { offset += 64 }
            return ByteBuffer(bytes: text[offset..<min(offset + 64, text.count)])
        }
        var pieces: [(String, Bool)] = []
        while let (piece, endsLine) = try await reader.nextPiece() {
            pieces.append((String(buffer: piece), endsLine))
            if pieces.count == 4 { break }
        }
        #expect(pieces.map(\.0.count) == [1000, 1000, 500, 5])
        #expect(pieces.map(\.1) == [false, false, true, true])
        #expect(reader.lineCount == 2)
        #expect(try await reader.next().map { String(buffer: $0) } == String(repeating: "x", count: 1000))
        #expect(try await reader.next().map { String(buffer: $0) } == "end")
        #expect(reader.lineCount == 4)
    }
}

@Suite struct DumpFileTests {
    @Test(arguments: [
        ("cluster-dump/nodes.json", DumpFile.clusterList(kind: "Node")),
        ("nodes.json", .clusterList(kind: "Node")),
        ("a/b/kube-system/pods.json", .namespacedList(namespace: "kube-system", kind: "Pod")),
        (
            "dump/default/replication-controllers.json",
            .namespacedList(namespace: "default", kind: "ReplicationController")
        ),
        ("dump/default/coredns-1/logs.txt", .podLogBlocks(namespace: "default", pod: "coredns-1")),
        ("dump/default/unknown.json", .ignored),
        ("bundle/cluster-resources/pods/velero.json", .namespacedList(namespace: "velero", kind: "Pod")),
        ("cluster-resources/nodes.json", .clusterList(kind: "Node")),
        ("x/cluster-resources/custom-resource-definitions.json", .clusterList(kind: "CustomResourceDefinition")),
        (
            "b/cluster-resources/pods/logs/velero/velero-1/velero.log",
            .containerLog(namespace: "velero", pod: "velero-1", container: "velero", isPrevious: false)
        ),
        (
            "b/cluster-resources/pods/logs/velero/velero-1/velero-previous.log",
            .containerLog(namespace: "velero", pod: "velero-1", container: "velero", isPrevious: true)
        ),
        ("b/cluster-resources/auth-cani-list/default.json", .ignored),
        ("b/cluster-resources/image-pull-secrets/default/registry-creds.json", .ignored),
        ("b/cluster-resources/resources.json", .ignored),
        ("b/cluster-info/cluster_version.json", .ignored),
    ])
    func classifiesPaths(_ path: String, _ expected: DumpFile) {
        #expect(DumpFile.classify(path) == expected)
    }

    @Test func classifiesEveryFileOfTheRealSupportBundle() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("shared/samples/support-bundle-sbctl").path
        let files = regularFiles(under: root)
        try #require(files.count > 100, "the sample bundle is beside the repository")
        let classified = files.map { ("support-bundle/" + $0, DumpFile.classify("support-bundle/" + $0)) }
        let logs = classified.filter { if case .containerLog = $0.1 { true } else { false } }
        #expect(logs.count == 7)
        #expect(logs.filter { if case .containerLog(_, _, "velero", true) = $0.1 { true } else { false } }.count == 1)
        let lists = classified.filter { if case .namespacedList = $0.1 { true } else { false } }
        // 11 folders of namespaced objects with a file for each of the 9 namespaces, and configmaps for 3.
        #expect(lists.count == 11 * 9 + 3)
        #expect(classified.contains { $0.1 == .clusterList(kind: "Namespace") })
        #expect(classified.contains { $0.1 == .clusterList(kind: "Node") })
    }
}

@Suite struct LogBlockSplitterTests {
    @Test func splitsBlocksWithGluedEndMarkersAndJSONLines() async throws {
        let text = """
            ==== START logs for container app of pod ns-1/web-1 ====
            {"level":"info","msg":"starts with a brace"}
            plain line
            last line==== END logs for container app of pod ns-1/web-1 ====
            ==== START logs for container sidecar of pod ns-1/web-1 ====
            Request log error: the server rejected our request
            ==== END logs for container sidecar of pod ns-1/web-1 ====
            ==== START logs for container empty of pod ns-1/web-2 ====
            ==== END logs for container empty of pod ns-1/web-2 ====
            ==== START logs for container cut of pod ns-2/db-0 ====
            line of a truncated block
            """
        let split = try await splitStdoutDump(Array(text.utf8))
        #expect(split.documents.isEmpty)
        #expect(split.blocks.map(\.0.container) == ["app", "sidecar", "empty", "cut"])
        #expect(split.blocks[0].0 == .init(namespace: "ns-1", pod: "web-1", container: "app"))
        #expect(split.blocks[0].1 == [#"{"level":"info","msg":"starts with a brace"}"#, "plain line", "last line"])
        #expect(split.blocks[1].1 == ["Request log error: the server rejected our request"])
        #expect(split.blocks[2].1.isEmpty)
        #expect(split.blocks[3].1 == ["line of a truncated block"])
    }

    @Test func aStartInsideAnOpenBlockClosesIt() {
        var splitter = LogBlockSplitter()
        var events: [LogBlockSplitter.Event] = []
        splitter.feed(ByteBuffer(string: "==== START logs for container a of pod n/p ===="), into: &events)
        splitter.feed(ByteBuffer(string: "==== START logs for container b of pod n/p ===="), into: &events)
        #expect(
            events == [
                .start(.init(namespace: "n", pod: "p", container: "a")), .end,
                .start(.init(namespace: "n", pod: "p", container: "b")),
            ])
        events.removeAll()
        splitter.feed(ByteBuffer(string: "x==== END logs for container a of pod n/p ===="), into: &events)
        #expect(
            events == [.line(ByteBuffer(string: "x==== END logs for container a of pod n/p ===="))],
            "another block's END is text")
    }
}

@Suite struct StdoutDumpTests {
    /// The generator's stdout form: every List document and every log block, with the generator's own counts.
    @Test(arguments: [1, 2, 3])
    func splitsGeneratedStdoutDumps(seed: Int) async throws {
        let dump = try GeneratedDump(["--form", "stdout", "--seed", "\(seed)", "--namespaces", "4"])
        let summary = dump.summary
        let split = try await splitStdoutDump(dump.bytes)
        #expect(split.documents.count == 1 + 4 * 7, "NodeList + 7 lists per namespace")
        for document in split.documents {
            #expect((try? JSONSerialization.jsonObject(with: Data(document.utf8))) != nil)
        }
        #expect(split.blocks.count == summary["containers"])
        let lineCount = split.blocks.map(\.1.count).reduce(0, +)
        // Raw lines: CRI partial lines are still separate here (the assembler joins them later).
        #expect(lineCount == summary["log_lines"]! + summary["partial_lines"]! + summary["log_errors"]!)
        #expect(split.blocks.allSatisfy { block in !block.1.contains { $0.contains("==== END") } })
    }

    @Test func bracesInStringsDoNotEndDocuments() throws {
        var items: [[UInt8]] = []
        var json = JSONListStream(maxItemBytes: 1000)
        try Array(##"{"a": "}}}", "b": "\"{""##.utf8).withUnsafeBytes { try json.feed($0, into: &items) }
        #expect(!json.isComplete)
        try Array(#", "c": [1, {"d": 2}]}"#.utf8).withUnsafeBytes { try json.feed($0, into: &items) }
        #expect(json.isComplete)
        var small = JSONListStream(maxItemBytes: 10)
        #expect {
            try Array(#"{"key": "a long value"}"#.utf8).withUnsafeBytes { try small.feed($0, into: &items) }
        } throws: {
            ($0 as? ArchiveError)?.kind == .limitExceeded
        }
        var cut = JSONListStream(maxItemBytes: 1000)
        try Array("{".utf8).withUnsafeBytes { try cut.feed($0, into: &items) }
        #expect(throws: ArchiveError.self) { try cut.finish(into: &items) }
    }

    /// Random log lines — many of them starting with `{` — inside blocks never produce a document.
    @Test func logLinesThatLookLikeJSONStayLogLines() async throws {
        var random = SystemRandomNumberGenerator()
        var text = "{\"kind\":\"PodList\",\"items\":[]}\n==== START logs for container c of pod n/p ====\n"
        var expected: [String] = []
        for _ in 0..<500 {
            let line = ["{", "}", "{\"a\":", "[", "\"", "x"].shuffled(using: &random).prefix(
                Int.random(in: 1...4, using: &random)
            ).joined()
            expected.append(line)
            text += line + "\n"
        }
        text += "==== END logs for container c of pod n/p ====\n{\"kind\":\"EventList\",\"items\":[]}\n"
        let split = try await splitStdoutDump(Array(text.utf8))
        #expect(split.documents.count == 2)
        #expect(split.blocks.first?.1 == expected)
    }
}

@Suite struct LogTimestampTests {
    static let reference =
        LogTimestamp.epochSeconds(year: 2022, month: 11, day: 30, hour: 0, minute: 0, second: 0)! * 1_000_000
    static let expected =
        LogTimestamp.epochSeconds(year: 2022, month: 11, day: 29, hour: 20, minute: 55, second: 22)! * 1_000_000

    static let formats: [(line: String, micros: Int64)] = [
        ("2022-11-29T20:55:22.82649547Z stderr F message", expected + 826_495),
        ("2022-11-29T20:55:22Z plain", expected),
        ("2022-11-29 20:55:22.5 with a space", expected + 500_000),
        ("2022-11-29T21:55:22+01:00 offset", expected),
        ("I1129 20:55:22.826495       1 main.go:42] klog", expected + 826_495),
        ("E1129 20:55:22.000001 9 x.go:1] error", expected + 1),
        (#"{"level":"info","ts":1669755322.826495,"msg":"zap"}"#, expected + 826_495),
        (#"{"ts":1669755322826,"msg":"millis"}"#, expected + 826_000),
        (#"{"time":"2022-11-29T20:55:22Z","msg":"logrus"}"#, expected),
        (#"{"msg":"x","timestamp": "2022-11-29T20:55:22.1Z"}"#, expected + 100_000),
        ("level=info time=2022-11-29T20:55:22Z msg=logfmt", expected),
        (#"time="2022-11-29T20:55:22Z" level=warn"#, expected),
    ]

    @Test(arguments: formats)
    func recognisesEveryFormat(_ line: String, _ micros: Int64) {
        #expect(LogTimestamp.parse(Array(line.utf8), referenceMicros: Self.reference) == micros)
    }

    @Test(arguments: [
        "plain text", "", "2022-13-29T20:55:22Z month 13", "I1329 20:55:22.1 bad month", #"{"msg":"no time"}"#,
        "runtime=2022-11-29T20:55:22Z not the key", "goroutine 1 [running]:",
    ])
    func recognisesNothingElse(_ line: String) {
        #expect(LogTimestamp.parse(Array(line.utf8), referenceMicros: Self.reference) == nil)
    }

    @Test func klogLinesFromDecemberInAJanuarySnapshotBelongToTheYearBefore() {
        let january =
            LogTimestamp.epochSeconds(year: 2023, month: 1, day: 2, hour: 0, minute: 0, second: 0)! * 1_000_000
        let december =
            LogTimestamp.epochSeconds(year: 2022, month: 12, day: 31, hour: 23, minute: 59, second: 0)! * 1_000_000
        #expect(
            LogTimestamp.parse(Array("I1231 23:59:00.000000 1 x.go:1] m".utf8), referenceMicros: january) == december)
    }

    /// Random instants formatted by Foundation parse back to the same microsecond.
    @Test func roundTripsRandomInstants() {
        var random = SystemRandomNumberGenerator()
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        for _ in 0..<2000 {
            let seconds = Int64.random(in: 0...4_102_444_800, using: &random)  // 1970 to 2100
            let micros = Int64.random(in: 0..<1_000_000, using: &random)
            let text = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
                .replacingOccurrences(of: "Z", with: String(format: ".%06dZ", micros))
            #expect(
                LogTimestamp.parse(Array((text + " x").utf8), referenceMicros: 0) == seconds * 1_000_000 + micros,
                "\(text)")
            #expect(LogTimestamp.civilYear(ofMicros: seconds * 1_000_000 + micros) == Int(text.prefix(4)))
        }
    }
}

@Suite struct LogLineAssemblerTests {
    @Test func joinsCRIPartialLinesAndNumbersLines() {
        var assembler = LogLineAssembler(referenceMicros: LogTimestampTests.reference)
        var output: [LogLine] = []
        for line in [
            "2022-11-29T20:55:22.1Z stdout P first part, ", "2022-11-29T20:55:23Z stdout P second part, ",
            "2022-11-29T20:55:24Z stdout F last part", "no timestamp here", "2022-11-29T20:55:25Z stderr F",
            "2022-11-29T20:55:26Z stdout P dangling",
        ] {
            assembler.feed(ByteBuffer(string: line), into: &output)
        }
        assembler.finish(into: &output)
        #expect(output.map(\.number) == [1, 2, 3, 4])
        #expect(output[0].text == "2022-11-29T20:55:22.1Z stdout F first part, second part, last part")
        #expect(output[0].timestampMicros == LogTimestampTests.expected + 100_000)
        #expect(output[1] == LogLine(number: 2, text: "no timestamp here", timestampMicros: nil))
        #expect(output[2].text == "2022-11-29T20:55:25Z stderr F")
        #expect(output[3].text == "2022-11-29T20:55:26Z stdout F dangling")
    }
}
