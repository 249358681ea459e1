import Foundation
import KubinModel
import TestSupport
import Testing

@testable import Orchestrators

let sampleBundle = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("shared/samples/support-bundle-sbctl/cluster-resources").path

/// A List document scanned as the ingest streams it, in pieces of `chunkSize` bytes.
struct ScannedList {
    var kind: String?
    var apiVersion: String?
    var items: [[UInt8]]

    init(_ bytes: [UInt8], chunkSize: Int = 1 << 16, maxItemBytes: Int = 16 << 20) throws {
        var stream = JSONListStream(maxItemBytes: maxItemBytes)
        var items: [[UInt8]] = []
        for start in stride(from: 0, to: bytes.count, by: chunkSize) {
            try bytes[start..<min(start + chunkSize, bytes.count)].withUnsafeBytes { try stream.feed($0, into: &items) }
        }
        try stream.finish(into: &items)
        self.kind = stream.kind
        self.apiVersion = stream.apiVersion
        self.items = items
    }
}

/// Every item of a List file of the sample bundle, extracted as the ingest would.
func extractSampleFile(_ relativePath: String) throws -> [ObjectExtractor.Extracted] {
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: sampleBundle + "/" + relativePath)))
    let list = try ScannedList(bytes)
    guard case .namespacedList(let namespace, let kind) = DumpFile.classify("cluster-resources/" + relativePath) else {
        return []
    }
    let context = ObjectExtractor.Context(
        listKind: list.kind, listAPIVersion: list.apiVersion, fileKind: kind, fileNamespace: namespace)
    return try list.items.compactMap { try ObjectExtractor.extract(Data($0), context: context) }
}

@Suite struct JSONListStreamTests {
    @Test func delimitsItemsOfPrettyAndCompactLists() throws {
        let pretty = """
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": [
                    {"metadata": {"name": "a", "annotations": {"x": "}]\\"{["}}},
                    {"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c"}]}}
                ]
            }
            """
        for text in [pretty, #"{"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}],"kind":"PodList"}"#] {
            for chunkSize in [1, 7, 1 << 16] {
                let list = try ScannedList(Array(text.utf8), chunkSize: chunkSize)
                #expect(list.kind == "PodList")
                #expect(list.items.count == 2)
                let names = try list.items.map {
                    (try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])?["metadata"]
                        .flatMap { ($0 as? [String: Any])?["name"] as? String }
                }
                #expect(names == ["a", "b"], "chunks of \(chunkSize)")
            }
        }
        #expect(try ScannedList(Array(#"{"kind":"EventList","items":null}"#.utf8)).items.isEmpty)
        let single = #"{"kind":"Pod","metadata":{"name":"single"},"spec":{"x":[1,"]"]}}"#
        #expect(try ScannedList(Array(single.utf8), chunkSize: 3).items == [Array(single.utf8)], "the document itself")
        #expect(try ScannedList(Array(#"{"kind":"PodList","items":[]}"#.utf8)).items.isEmpty)
    }

    @Test func refusesAnItemOverTheLimitWithoutHoldingMore() {
        let list = #"{"kind":"PodList","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"far too long"}}]}"#
        #expect { _ = try ScannedList(Array(list.utf8), chunkSize: 5, maxItemBytes: 30) } throws: {
            ($0 as? ArchiveError)?.kind == .limitExceeded
        }
    }

    @Test(arguments: [
        #"["not", "an", "object"]"#, #"{"items": [{"a": 1}"#, #"{"items": "x"}"#, #"{"kind": 1"#, "",
        #"{"kind": 1}"#, #"{"a": 1,}"#, #"{"items": [1,]}"#, #"{"a" 1}"#, #"{"items": [{}]"#,
    ])
    func refusesMalformedDocuments(_ text: String) {
        #expect { _ = try ScannedList(Array(text.utf8), chunkSize: 2) } throws: {
            ($0 as? ArchiveError)?.kind == .corrupt
        }
    }

    /// Random Lists written by Python's json module, read in random pieces: every item decodes to that item.
    @Test func agreesWithPythonOnRandomLists() throws {
        let output = try python(
            """
            import json, random, sys
            random.seed(7)
            def value(depth):
                choice = random.randrange(7 if depth < 3 else 4)
                if choice == 0: return random.randint(-10**6, 10**6)
                if choice == 1: return random.choice(['', 'x', '}]"{[\\\\', 'ünï', '\\n\\t'])
                if choice == 2: return random.choice([True, False, None])
                if choice == 3: return random.random()
                if choice == 4: return [value(depth + 1) for _ in range(random.randrange(4))]
                return {random.choice(['k', 'kind', 'items', '"q"']) + str(i): value(depth + 1) for i in range(random.randrange(4))}
            lists = []
            for n in range(50):
                items = [{"metadata": {"name": "n%d" % i}, "v": value(0)} for i in range(random.randrange(6))]
                lists.append(json.dumps({"kind": "ThingList", "items": items, "extra": value(0)}, indent=random.choice([None, 2, 4])))
            sys.stdout.write(json.dumps(lists))
            """)
        let lists = try #require(try JSONSerialization.jsonObject(with: Data(output)) as? [String])
        var random = SeededRandom.forThisRun()
        for text in lists {
            let bytes = Array(text.utf8)
            let list = try ScannedList(bytes, chunkSize: Int.random(in: 1...64, using: &random))
            let expected =
                (try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])?["items"] as? [Any] ?? []
            #expect(list.items.count == expected.count, "\(random.replay)")
            #expect(list.kind == "ThingList")
            for (raw, item) in zip(list.items, expected) {
                let decoded = try JSONSerialization.jsonObject(with: Data(raw))
                #expect(
                    NSDictionary(dictionary: decoded as! [String: Any])
                        == NSDictionary(dictionary: item as! [String: Any]))
            }
        }
    }
}

@Suite struct ObjectExtractorTests {
    @Test func readsTheSampleBundlesPodsWithTheirContainerRoles() throws {
        let velero = try extractSampleFile("pods/velero.json").compactMap(\.pod)
        #expect(velero.count == 5)
        let crashing = try #require(velero.first { $0.name == "velero-6996dd565b-xl44t" })
        #expect(crashing.phase == "Running" && crashing.node == "troubleshoot-demo-002")
        #expect(crashing.containers.map(\.role) == [.`init`, .`init`, .`init`, .`init`, .`init`, .main])
        let main = try #require(crashing.containers.last)
        #expect(main.name == "velero" && main.restarts == 3 && main.lastTerminationReason == "Error")
        #expect(crashing.restarts == 3)

        let envoy = try #require(
            try extractSampleFile("pods/projectcontour.json").compactMap(\.pod).first { $0.name == "envoy-b4bxc" })
        #expect(envoy.containers.map(\.name) == ["envoy-initconfig", "envoy", "shutdown-manager"])
        #expect(envoy.containers.map(\.role) == [.`init`, .main, .main])

        let haproxy = try #require(
            try extractSampleFile("pods/kube-system.json").compactMap(\.pod).first {
                $0.name == "haproxy-troubleshoot-demo-001"
            })
        #expect(haproxy.containers.first?.restarts == 2 && haproxy.containers.first?.lastTerminationReason == "Error")
        #expect(haproxy.containers.first?.state == "running" && haproxy.containers.first?.isReady == true)
    }

    @Test func readsTheSampleBundlesEvents() throws {
        let events = try extractSampleFile("events/velero.json")
        #expect(events.compactMap(\.event).count == 67)
        let warnings = events.compactMap(\.event).filter { $0.type == "Warning" }
        #expect(warnings.count == 3 && warnings.allSatisfy { $0.reason == "BackOff" && $0.involvedKind == "Pod" })
        let scheduled = try #require(events.compactMap(\.event).first { $0.reason == "Scheduled" })
        #expect(scheduled.firstMicros != nil, "eventTime stands in for a null firstTimestamp")
        #expect(scheduled.count == 1)
    }

    @Test func takesTheKindFromTheListAndTheNamespaceFromTheFile() throws {
        let item = Data(
            #"{"metadata":{"name":"web","uid":"u1","labels":{"app":"web"},"creationTimestamp":"2022-11-29T20:55:22Z","ownerReferences":[{"kind":"Deployment","name":"web","controller":true}]},"spec":{}}"#
                .utf8)
        let extracted = try #require(
            try ObjectExtractor.extract(
                item,
                context: .init(
                    listKind: "ReplicaSetList", listAPIVersion: "apps/v1", fileKind: nil, fileNamespace: "prod")))
        #expect(
            extracted.resource
                == ResourceRecord(
                    kind: "ReplicaSet", apiVersion: "apps/v1", namespace: "prod", name: "web", uid: "u1",
                    labels: ["app": "web"],
                    createdAtMicros: 1_669_755_322_000_000,
                    owners: [OwnerReference(kind: "Deployment", name: "web", isController: true)]))
        // No List kind: the file's name tells; nothing tells: not indexable.
        #expect(
            try ObjectExtractor.extract(
                item, context: .init(listKind: nil, listAPIVersion: nil, fileKind: "Service", fileNamespace: "x"))?
                .resource.kind == "Service")
        #expect(
            try ObjectExtractor.extract(
                item, context: .init(listKind: nil, listAPIVersion: nil, fileKind: nil, fileNamespace: nil)) == nil)
        #expect(
            try ObjectExtractor.extract(
                Data(#"{"metadata":{}}"#.utf8),
                context: .init(listKind: "PodList", listAPIVersion: nil, fileKind: nil, fileNamespace: nil)) == nil)
    }

    @Test func recognisesSidecarsAndEventsOfTheNewAPI() throws {
        let pod = Data(
            #"""
            {"metadata":{"name":"p","namespace":"n"},
             "spec":{"nodeName":"node-1","initContainers":[{"name":"setup","image":"i:1"},{"name":"proxy","image":"p:1","restartPolicy":"Always"}],
                     "containers":[{"name":"app","image":"a:1"}]},
             "status":{"phase":"Running","initContainerStatuses":[{"name":"setup","state":{"terminated":{"reason":"Completed","exitCode":0}}},
                       {"name":"proxy","ready":true,"state":{"running":{"startedAt":"2022-11-29T20:00:00Z"}}}],
                       "containerStatuses":[{"name":"app","restartCount":4,"state":{"waiting":{"reason":"CrashLoopBackOff"}},
                       "lastState":{"terminated":{"reason":"OOMKilled","exitCode":137}}}]}}
            """#.utf8)
        let record = try #require(
            try ObjectExtractor.extract(
                pod, context: .init(listKind: "PodList", listAPIVersion: "v1", fileKind: nil, fileNamespace: nil))?.pod)
        #expect(
            record.containers == [
                ContainerRecord(
                    name: "setup", role: .`init`, image: "i:1", state: "terminated", stateReason: "Completed"),
                ContainerRecord(name: "proxy", role: .sidecar, image: "p:1", state: "running", isReady: true),
                ContainerRecord(
                    name: "app", role: .main, image: "a:1", state: "waiting", stateReason: "CrashLoopBackOff",
                    restarts: 4,
                    lastTerminationReason: "OOMKilled", lastExitCode: 137),
            ])
        let event = Data(
            #"{"kind":"Event","apiVersion":"events.k8s.io/v1","metadata":{"name":"e","namespace":"n"},"type":"Warning","reason":"Failed","note":"pull failed","regarding":{"kind":"Pod","name":"p"},"series":{"count":7,"lastObservedTime":"2022-11-29T20:55:22Z"},"eventTime":"2022-11-29T20:00:00Z"}"#
                .utf8)
        let record2 = try #require(
            try ObjectExtractor.extract(
                event, context: .init(listKind: nil, listAPIVersion: nil, fileKind: nil, fileNamespace: nil))?.event)
        #expect(record2.message == "pull failed" && record2.count == 7 && record2.involvedName == "p")
        #expect(record2.lastMicros == 1_669_755_322_000_000 && record2.firstMicros == 1_669_752_000_000_000)
    }
}
