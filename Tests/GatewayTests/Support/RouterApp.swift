import Foundation
import HummingbirdTesting
import Logging

@testable import Gateway

/// Runs `body` against the gateway's application without sockets (HummingbirdTesting's router mode).
func withRouterApp(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
    let directory = NSTemporaryDirectory() + "kubin-router-test-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = GatewayConfiguration(dataDirectory: directory)
    configuration.http.port = 0
    try await Gateway.with(configuration: configuration, logger: Logger(label: "test")) { gateway in
        try await gateway.makeApplication().test(.router, body)
    }
}

extension TestResponse {
    /// The body as a JSON object.
    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }
}
