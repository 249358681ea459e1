import Foundation
import TestSupport
import Testing

@testable import Clients

@Suite struct SigV4Tests {
    /// AWS's example "GET Object" (the first 10 bytes of examplebucket/test.txt), from the S3 API reference's
    /// "Signature Calculations for the Authorization Header".
    @Test func matchesTheS3GetObjectExample() throws {
        let signer = SigV4Signer(
            credentials: .init(
                accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let request = SigV4Signer.Request(
            method: "GET", path: "/test.txt",
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")],
            payloadHash: SigV4Signer.emptyPayloadHash)
        let date = try #require(ISO8601DateFormatter().date(from: "2013-05-24T00:00:00Z"))
        let headers = Dictionary(uniqueKeysWithValues: signer.sign(request, at: date).map { ($0.name, $0.value) })
        #expect(headers["x-amz-date"] == "20130524T000000Z")
        #expect(
            headers["authorization"]
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    /// AWS's SigV4 test suite, case `get-vanilla` (service `service`).
    @Test func matchesTheTestSuitesGetVanilla() throws {
        // The suite signs without x-amz-content-sha256; the canonical request is checked directly.
        let request = SigV4Signer.Request(
            method: "GET", path: "/",
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4Signer.emptyPayloadHash)
        let (canonical, signed) = SigV4Signer.canonicalRequest(request)
        #expect(signed == "host;x-amz-date")
        #expect(
            canonical
                == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                + SigV4Signer.emptyPayloadHash)
    }

    @Test func encodesLikeAWS() {
        #expect(SigV4Signer.uriEncode("a b/c~d*é") == "a%20b%2Fc~d%2A%C3%A9")
        #expect(SigV4Signer.uriEncode("snapshots/x y", keepSlash: true) == "snapshots/x%20y")
        #expect(SigV4Signer.timestamps(Date(timeIntervalSince1970: 951_782_400)) == ("20000229T000000Z", "20000229"))
        #expect(SigV4Signer.timestamps(Date(timeIntervalSince1970: 4_102_444_799)) == ("20991231T235959Z", "20991231"))
    }

    /// Generated requests (odd keys, query parameters, repeated and spaced headers, session tokens, dates) signed
    /// here and by botocore's S3 signer must agree exactly.
    @Test func agreesWithBotocoreOnGeneratedRequests() throws {
        var random = SeededRandom.forThisRun()
        let pieces = ["snapshots", "a b", "ünï", "x+y", "~tilde", "q=1&r", "%", "*", "dir.with.dots", "日本"]
        var cases: [[String: Any]] = []
        var expected: [String] = []
        for index in 0..<60 {
            let segments = (0..<Int.random(in: 1...4, using: &random)).map { _ in pieces.randomElement(using: &random)!
            }
            let path = "/bucket/" + segments.map { SigV4Signer.uriEncode($0) }.joined(separator: "/")
            var query: [(name: String, value: String)] = []
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                query.append(
                    (
                        ["list-type", "prefix", "uploadId", "partNumber", "a b"].randomElement(using: &random)!,
                        pieces.randomElement(using: &random)!
                    ))
            }
            let headers: [(name: String, value: String)] = [
                ("Host", "127.0.0.1:9000"), ("Content-Type", "application/octet-stream"),
                ("X-Amz-Meta-Note", "  spaced    value  \(index) "), ("Range", "bytes=\(index)-\(index + 99)"),
            ]
            let token = Bool.random(using: &random) ? "token/\(index)+=" : nil
            let signer = SigV4Signer(
                credentials: .init(
                    accessKeyID: "AKID\(index)", secretAccessKey: "secret/\(index)+key", sessionToken: token),
                region: ["us-east-1", "eu-west-3"].randomElement(using: &random)!)
            let payload = index % 3 == 0 ? "UNSIGNED-PAYLOAD" : SigV4Signer.emptyPayloadHash
            let date = Date(timeIntervalSince1970: Double.random(in: 1.5e9...2e9, using: &random).rounded())
            let request = SigV4Signer.Request(
                method: ["GET", "PUT", "POST", "DELETE", "HEAD"].randomElement(using: &random)!, path: path,
                query: query, headers: headers, payloadHash: payload)
            let signed = signer.sign(request, at: date)
            let amzDate = signed.first { $0.name == "x-amz-date" }!.value
            expected.append(signed.first { $0.name == "authorization" }!.value)
            cases.append([
                "method": request.method, "path": path,
                "query": query.map { SigV4Signer.uriEncode($0.name) + "=" + SigV4Signer.uriEncode($0.value) }
                    .joined(separator: "&"),
                "headers": headers.map { [$0.name, $0.value] }, "payload": payload, "date": amzDate,
                "key": signer.credentials.accessKeyID, "secret": signer.credentials.secretAccessKey,
                "token": token as Any, "region": signer.region,
            ])
        }
        let script = """
            import json, sys
            from botocore.auth import S3SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            out = []
            for c in json.load(sys.stdin):
                auth = S3SigV4Auth(Credentials(c['key'], c['secret'], c['token']), 's3', c['region'])
                url = 'http://127.0.0.1:9000' + c['path'] + ('?' + c['query'] if c['query'] else '')
                request = AWSRequest(method=c['method'], url=url)
                for name, value in c['headers']:
                    request.headers[name] = value
                request.headers['X-Amz-Date'] = c['date']
                request.headers['X-Amz-Content-SHA256'] = c['payload']
                if c['token']:
                    request.headers['X-Amz-Security-Token'] = c['token']
                request.context['timestamp'] = c['date']
                canonical = auth.canonical_request(request)
                signature = auth.signature(auth.string_to_sign(request, canonical), request)
                scope = c['date'][:8] + '/' + c['region'] + '/s3/aws4_request'
                out.append('AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s' % (
                    c['key'], scope, auth.signed_headers(auth.headers_to_sign(request)), signature))
            print(json.dumps(out))
            """
        let input = try JSONSerialization.data(withJSONObject: cases)
        let output = try python(script, input: Array(input))
        let botocore = try JSONSerialization.jsonObject(with: Data(output)) as? [String]
        #expect(botocore?.count == expected.count)
        for (ours, theirs) in zip(expected, botocore ?? []) { #expect(ours == theirs, "\(random.replay)") }
    }
}
