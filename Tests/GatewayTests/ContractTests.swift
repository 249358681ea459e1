import Foundation
import Logging
import Testing
import Yams

@testable import Gateway

/// `openapi/kubin.yaml` and the served routes describe the same API.
@Suite struct ContractTests {
    static let specificationPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("openapi/kubin.yaml").path

    func specification() throws -> [String: Any] {
        try #require(
            try Yams.load(yaml: String(contentsOfFile: Self.specificationPath, encoding: .utf8)) as? [String: Any])
    }

    @Test func everyServedRouteIsSpecifiedAndEverySpecifiedRouteIsServed() async throws {
        let paths = try #require(try specification()["paths"] as? [String: [String: Any]])
        let methods: Set = ["get", "put", "post", "delete", "patch", "head", "options"]
        let specified = Set(
            paths.flatMap { path, item in
                item.keys.filter(methods.contains).map { RouteTable.Route(method: $0.uppercased(), path: path) }
            })
        let directory = NSTemporaryDirectory() + "kubin-contract-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let served = try await Gateway.with(
            configuration: try GatewayConfiguration(raw: ["data.dir": directory]), logger: Logger(label: "test")
        ) { gateway in Set(try gateway.makeRouter().routes.routes).union(gateway.makeMetricsRouter().routes.routes) }
        #expect(served.subtracting(specified).isEmpty, "served but not in the spec: \(served.subtracting(specified))")
        #expect(specified.subtracting(served).isEmpty, "in the spec but not served: \(specified.subtracting(served))")
        #expect(served.count >= 9)
    }

    @Test func errorAnswersOfTheSnapshotAPIAreProblems() throws {
        let specification = try specification()
        let components = try #require(specification["components"] as? [String: Any])
        let sharedResponses = try #require(components["responses"] as? [String: [String: Any]])
        let paths = try #require(specification["paths"] as? [String: [String: Any]])
        for (path, item) in paths where path.hasPrefix("/api/") {
            for (method, operation) in item {
                guard let responses = (operation as? [String: Any])?["responses"] as? [String: Any] else { continue }
                for (status, response) in responses where Int(status).map({ $0 >= 400 }) == true {
                    var response = response as? [String: Any] ?? [:]
                    if let reference = response["$ref"] as? String {
                        response = sharedResponses[String(reference.split(separator: "/").last!)] ?? [:]
                    }
                    let content = response["content"] as? [String: Any] ?? [:]
                    #expect(content.keys.sorted() == ["application/problem+json"], "\(method) \(path) \(status)")
                }
            }
        }
    }

    @Test func theServedDocumentIsTheContract() async throws {
        let contract = try String(contentsOfFile: Self.specificationPath, encoding: .utf8)
        try await withRouterApp { client in
            try await client.execute(uri: "/openapi.yaml", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == contract)
            }
        }
    }
}
