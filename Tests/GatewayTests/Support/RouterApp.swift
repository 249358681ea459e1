import Foundation
import HTTPTypes
import HummingbirdTesting
import KubinModel
import Logging
import NIOCore

@testable import Gateway

/// Runs `body` against the gateway's application without sockets (HummingbirdTesting's router mode). Requests carry
/// a development token of tenant `default` with every scope unless they name their own `Authorization`.
func withRouterApp(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
    let directory = NSTemporaryDirectory() + "kubin-router-test-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let configuration = try GatewayConfiguration(raw: ["data.dir": directory, "http.port": "0"])
    try await Gateway.with(configuration: configuration, logger: Logger(label: "test")) { gateway in
        let token = try await gateway.access.developmentSigner!.token(
            subject: "router-test", tenant: .legacy, scopes: Set(Scope.allCases), validity: .seconds(3600))
        try await gateway.makeApplication().test(.router) { client in
            try await body(AuthorizedClient(base: client, token: token))
        }
    }
}

/// A test client that adds `Authorization: Bearer <token>` to requests that carry none.
struct AuthorizedClient: TestClientProtocol {
    let base: any TestClientProtocol
    let token: String

    func executeRequest(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?
    ) async throws -> TestResponse {
        var headers = headers
        if headers[.authorization] == nil { headers[.authorization] = "Bearer \(token)" }
        return try await base.executeRequest(uri: uri, method: method, headers: headers, body: body)
    }

    var port: Int? { base.port }
}

extension TestResponse {
    /// The body as a JSON object.
    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }
}
