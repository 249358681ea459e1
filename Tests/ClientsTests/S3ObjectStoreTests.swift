import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import TestSupport
import Testing

@testable import Clients

/// What only the S3 store has: multipart uploads, aborts, signatures checked by the server, listing.
@Suite struct S3ObjectStoreTests {
    struct Disconnected: Error {}

    /// Runs `body` with a store under a fresh prefix; `secret` replaces the real secret when given.
    func withStore(
        secret: String? = nil, _ body: (S3ObjectStore, S3Location) async throws -> Void
    ) async throws {
        var (location, credentials) = try TestServers.s3()
        if let secret { credentials.secretAccessKey = secret }
        try await withS3Store(location, credentials, body)
    }

    /// Multipart uploads in progress under `prefix`, asked of the server with botocore.
    func pendingUploads(under prefix: String) throws -> Int {
        let (location, credentials) = try TestServers.s3()
        let output = try python(
            """
            import boto3
            s3 = boto3.client('s3', endpoint_url='\(location.endpoint.absoluteString)', region_name='\(location.region)',
                aws_access_key_id='\(credentials.accessKeyID)', aws_secret_access_key='\(credentials.secretAccessKey)')
            print(len(s3.list_multipart_uploads(Bucket='\(location.bucket)', Prefix='\(prefix)').get('Uploads', [])))
            """)
        return Int(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test func largeBodiesGoUpInSignedPartsAndComeBackWhole() async throws {
        try await withStore { store, _ in
            let bytes = randomBytes(12 << 20 + 12_345, seed: 11)  // three parts of 5 MiB, the last shorter
            let key = ObjectKey(validating: "snapshots/big/archive")!
            let info = try await store.put(key, body: Chunks(chunked(bytes, maxChunk: 300_000)))
            #expect(info.size == Int64(bytes.count))
            #expect(try await store.info(key)?.size == Int64(bytes.count))
            #expect(try await readAll(store, key) == bytes)
            let boundary = Int64(5 << 20)
            #expect(
                try await readAll(store, key, range: (boundary - 10)..<(boundary + 10))
                    == Array(bytes[Int(boundary - 10)..<Int(boundary + 10)]))
        }
    }

    @Test func aBodyFailingMidUploadAbortsItAndLeavesNoParts() async throws {
        try await withStore { store, location in
            let key = ObjectKey(validating: "snapshots/broken/archive")!
            let chunks = chunked(randomBytes(11 << 20, seed: 12), maxChunk: 1 << 20)
            await #expect(throws: Disconnected.self) {
                _ = try await store.put(key, body: Chunks(chunks, failingWith: Disconnected()))
            }
            let info = try await store.info(key)
            #expect(info == nil)
            let pending = try pendingUploads(under: location.prefix)
            #expect(pending == 0, "the multipart upload was aborted")
        }
    }

    @Test func aWrongSecretIsRefusedByTheServer() async throws {
        try await withStore(secret: "not-the-secret") { store, _ in
            await #expect {
                _ = try await store.put(ObjectKey(validating: "x")!, body: Chunks([ByteBuffer(string: "x")]))
            } throws: { error in
                "\(error)".contains("SignatureDoesNotMatch") && !"\(error)".contains("not-the-secret")
            }
            await #expect(throws: ObjectStoreError.self) { try await store.checkHealth() }
        }
    }

    /// Virtual-hosted style, as on AWS: the bucket is in the host name (`kubin.s3.us-east-1.amazonaws.com`), which
    /// is signed. The name cannot resolve here, so the HTTP client goes through a `CONNECT` proxy that tunnels to the
    /// signature-checking server, which then sees the Host header exactly as AWS would.
    @Test func virtualHostedStyleRequestsAreSignedForTheBucketsHostName() async throws {
        let (server, credentials) = try TestServers.s3()
        let location = try #require(
            S3Location(url: "s3://\(server.bucket)?endpoint=http://s3.us-east-1.amazonaws.com&style=virtual"))
        #expect(!location.usesPathStyle)
        let tunnel = try ConnectProxy(to: server.endpoint.port!)
        let proxy = HTTPClient.Configuration.Proxy.server(host: "127.0.0.1", port: tunnel.port)
        try await withS3Store(location, credentials, configuration: HTTPClient.Configuration(proxy: proxy)) {
            store, _ in
            let key = ObjectKey(validating: "snapshots/virtual/archive")!
            let bytes = randomBytes(6 << 20, seed: 21)  // a multipart upload: two parts
            #expect(try await store.put(key, body: Chunks(chunked(bytes, maxChunk: 1 << 20))).size == 6 << 20)
            #expect(try await readAll(store, key, range: 100..<200) == Array(bytes[100..<200]))
            try await store.checkHealth()
            try await store.delete(key)
            #expect(try await store.info(key) == nil)
        }
        // The same requests with a wrong secret are refused: the server checked the signatures above.
        var wrong = credentials
        wrong.secretAccessKey = "not-the-secret"
        try await withS3Store(location, wrong, configuration: HTTPClient.Configuration(proxy: proxy)) { store, _ in
            await #expect(throws: ObjectStoreError.self) { try await store.checkHealth() }
        }
        let hosts = Set(tunnel.stop())
        #expect(hosts == ["\(server.bucket).s3.us-east-1.amazonaws.com:80"], "the bucket was in the host name")
    }

    @Test func s3URLs() {
        let aws = S3Location(url: "s3://my-bucket/kubin/prod?region=eu-west-3")
        #expect(aws?.endpoint.absoluteString == "https://s3.eu-west-3.amazonaws.com" && aws?.usesPathStyle == false)
        #expect(aws?.prefix == "kubin/prod")
        let local = S3Location(url: "s3://kubin?endpoint=http://127.0.0.1:9000")
        #expect(local?.usesPathStyle == true && local?.region == "us-east-1" && local?.prefix == "")
        #expect(S3Location(url: "s3://Bad_Bucket") == nil)
        #expect(S3Location(url: "s3://bucket?endpoint=ftp://x") == nil)
        #expect(S3Location(url: "s3://bucket?style=diagonal") == nil)
        #expect(XMLText.all("Key", in: "<Key>a&amp;b</Key><Key>c</Key>") == ["a&b", "c"])
    }
}
