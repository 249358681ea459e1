import AsyncHTTPClient
import Crypto
import Foundation
import KubinSupport
import Logging
import NIOCore
import NIOHTTP1

/// The production ``ObjectStore``: an S3-compatible bucket over AsyncHTTPClient, every request signed with
/// ``SigV4Signer``.
///
/// A put reads the body in parts of `partSize`: a body that fits one part is one `PUT`; a longer one is a multipart
/// upload whose every part is hashed and signed, completed at the end and aborted on any failure (so no orphan parts
/// stay billed). Memory is bounded by one part. Reads stream ranged `GET`s; every call has a timeout.
package final class S3ObjectStore: ObjectStore {
    private let location: S3Location
    private let signer: SigV4Signer
    private let http: HTTPClient
    private let partSize: Int
    private let listPageSize: Int
    private let timeout: TimeAmount
    private let logger: Logger

    /// A store for the bucket at `location`, signing with `credentials`. `partSize` is at least 5 MiB (S3's minimum);
    /// listings ask for `listPageSize` keys a page (S3 answers at most 1000).
    package init(
        location: S3Location, credentials: SigV4Signer.Credentials, http: HTTPClient, partSize: Int = 8 << 20,
        listPageSize: Int = 1000, timeout: Duration = .seconds(30), logger: Logger
    ) {
        self.location = location
        self.signer = SigV4Signer(credentials: credentials, region: location.region)
        self.http = http
        self.partSize = max(partSize, 5 << 20)
        self.listPageSize = min(max(listPageSize, 1), 1000)
        self.timeout = .nanoseconds(Int64(timeout / .nanoseconds(1)))
        self.logger = logger
    }

    // MARK: ObjectStore

    package func put(_ key: ObjectKey, body: some AsyncSequence<ByteBuffer, any Error>) async throws -> ObjectInfo {
        var iterator = body.makeAsyncIterator()
        var part = ByteBuffer()
        var finished = false
        func fill() async throws {
            while part.readableBytes < partSize {
                guard var chunk = try await iterator.next() else {
                    finished = true
                    return
                }
                part.writeBuffer(&chunk)
            }
        }
        try await fill()
        if finished {
            _ = try await send("PUT", key: key, body: part, expect: [200])
            return ObjectInfo(size: Int64(part.readableBytes))
        }
        let created = try await send("POST", key: key, query: [("uploads", "")], expect: [200])
        guard let uploadID = XMLText.first("UploadId", in: created.body) else {
            throw ObjectStoreError.io("S3 started a multipart upload without an UploadId")
        }
        do {
            var etags: [String] = []
            var size: Int64 = 0
            while true {
                // A part of exactly partSize is sent; what is beyond it starts the next part.
                let length = min(part.readableBytes, partSize)
                let slice = part.readSlice(length: length)!
                let uploaded = try await send(
                    "PUT", key: key, query: [("partNumber", String(etags.count + 1)), ("uploadId", uploadID)],
                    body: slice, expect: [200])
                guard let etag = uploaded.headers.first(name: "ETag") else {
                    throw ObjectStoreError.io("S3 accepted a part without an ETag")
                }
                etags.append(etag)
                size += Int64(length)
                part.discardReadBytes()
                if !finished { try await fill() }
                if finished && part.readableBytes == 0 { break }
            }
            let manifest =
                "<CompleteMultipartUpload>"
                + etags.enumerated().map {
                    "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(XMLText.escape($0.element))</ETag></Part>"
                }.joined() + "</CompleteMultipartUpload>"
            let completed = try await send(
                "POST", key: key, query: [("uploadId", uploadID)], body: ByteBuffer(string: manifest), expect: [200])
            // S3 may answer 200 and still report an error in the body.
            if XMLText.first("Code", in: completed.body) != nil {
                throw ObjectStoreError.io("S3 could not complete a multipart upload")
            }
            return ObjectInfo(size: size)
        } catch {
            await abort(key, uploadID: uploadID)
            throw error
        }
    }

    package func info(_ key: ObjectKey) async throws -> ObjectInfo? {
        let answer = try await send("HEAD", key: key, expect: [200, 404])
        guard answer.status == 200 else { return nil }
        guard let length = answer.headers.first(name: "Content-Length").flatMap(Int64.init) else {
            throw ObjectStoreError.io("S3 answered HEAD without a Content-Length")
        }
        return ObjectInfo(size: length)
    }

    package func read(
        _ key: ObjectKey, range: Range<Int64>?, into consume: (ByteBuffer) async throws -> Void
    ) async throws {
        if let range, range.isEmpty { return }
        let request = signedRequest(
            "GET", name: objectName(key), query: [], body: nil, range: range, payloadHash: SigV4Signer.emptyPayloadHash)
        let response = try await http.execute(request, timeout: timeout, logger: logger)
        switch response.status.code {
        case 200, 206:
            let expected = range.map { $0.upperBound - $0.lowerBound }
            var received: Int64 = 0
            for try await chunk in response.body {
                received += Int64(chunk.readableBytes)
                try await consume(chunk)
            }
            if let expected, received != expected { throw ObjectStoreError.rangeOutOfBounds(key) }
        case 404: throw ObjectStoreError.notFound(key)
        case 416: throw ObjectStoreError.rangeOutOfBounds(key)
        default: throw ObjectStoreError.io("S3 answered GET with \(response.status.code)")
        }
    }

    package func delete(_ key: ObjectKey) async throws {
        _ = try await send("DELETE", key: key, expect: [200, 204, 404])
    }

    /// Lists with ListObjectsV2 and deletes key by key. (moto, the S3 server of the tests, rejects a correctly signed
    /// ListObjectsV2 whose `prefix` holds a `/`, boto3's own included; the tests of listing use a moto that does not
    /// check signatures.)
    package func deleteAll(under prefix: ObjectKey) async throws {
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("max-keys", String(listPageSize)), ("prefix", objectName(prefix) + "/")]
            if let token { query.append(("continuation-token", token)) }
            let listing = try await send("GET", key: nil, query: query, expect: [200])
            for name in XMLText.all("Key", in: listing.body) {
                _ = try await send("DELETE", name: name, query: [], body: nil, expect: [200, 204, 404])
            }
            token =
                XMLText.first("IsTruncated", in: listing.body) == "true"
                ? XMLText.first("NextContinuationToken", in: listing.body) : nil
        } while token != nil
    }

    package func checkHealth() async throws {
        _ = try await send("HEAD", key: nil, expect: [200])
    }

    // MARK: Requests

    private struct Answer {
        var status: UInt
        var headers: HTTPHeaders
        var body: String
    }

    private func send(
        _ method: String, key: ObjectKey?, query: [(String, String)] = [], body: ByteBuffer? = nil,
        expect: Set<UInt>
    ) async throws -> Answer {
        try await send(method, name: key.map(objectName), query: query, body: body, expect: expect)
    }

    private func send(
        _ method: String, name: String?, query: [(String, String)], body: ByteBuffer?, expect: Set<UInt>
    ) async throws -> Answer {
        let hash = body.map { SHA256.hash(data: $0.readableBytesView).hexString } ?? SigV4Signer.emptyPayloadHash
        let request = signedRequest(method, name: name, query: query, body: body, range: nil, payloadHash: hash)
        let response = try await http.execute(request, timeout: timeout, logger: logger)
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard expect.contains(response.status.code) else {
            // The S3 error code (SignatureDoesNotMatch, NoSuchBucket, ...) is safe to log; credentials never are.
            let code = XMLText.first("Code", in: text) ?? "no error code"
            throw ObjectStoreError.io("S3 answered \(method) with \(response.status.code) (\(code))")
        }
        return Answer(status: response.status.code, headers: response.headers, body: text)
    }

    /// The signed request for object `name` (nil: the bucket itself), path- or virtual-hosted-style.
    private func signedRequest(
        _ method: String, name: String?, query: [(String, String)], body: ByteBuffer?, range: Range<Int64>?,
        payloadHash: String
    ) -> HTTPClientRequest {
        var path = location.endpoint.path.split(separator: "/").map { "/" + SigV4Signer.uriEncode(String($0)) }
            .joined()
        var host = location.endpoint.host!
        if location.usesPathStyle { path += "/" + location.bucket } else { host = location.bucket + "." + host }
        if let name { path += "/" + SigV4Signer.uriEncode(name, keepSlash: true) }
        if path.isEmpty { path = "/" }
        let authority = host + (location.endpoint.port.map { ":\($0)" } ?? "")
        let queryText = query.map { SigV4Signer.uriEncode($0.0) + "=" + SigV4Signer.uriEncode($0.1) }
            .joined(separator: "&")
        var request = HTTPClientRequest(
            url: "\(location.endpoint.scheme!)://\(authority)\(path)" + (queryText.isEmpty ? "" : "?" + queryText))
        request.method = HTTPMethod(rawValue: method)
        var signedHeaders: [(name: String, value: String)] = [("host", authority)]
        if let body {
            request.body = .bytes(body)
            signedHeaders.append(("content-length", String(body.readableBytes)))
        }
        if let range { signedHeaders.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        let signature = signer.sign(
            SigV4Signer.Request(
                method: method, path: path, query: query.map { (name: $0.0, value: $0.1) }, headers: signedHeaders,
                payloadHash: payloadHash),
            at: Date())
        for (name, value) in signedHeaders + signature { request.headers.replaceOrAdd(name: name, value: value) }
        return request
    }

    private func abort(_ key: ObjectKey, uploadID: String) async {
        do {
            _ = try await send("DELETE", key: key, query: [("uploadId", uploadID)], expect: [200, 204, 404])
        } catch {
            logger.error(
                "aborting a multipart upload failed; its parts stay until the bucket's lifecycle rule removes them",
                metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    private func objectName(_ key: ObjectKey) -> String {
        location.prefix.isEmpty ? key.rawValue : location.prefix + "/" + key.rawValue
    }
}

/// The few pieces of S3's XML answers the store reads: text of an element, entities decoded. (The store's own keys
/// are plain ASCII, so no XML library is needed for them.)
enum XMLText {
    static func all(_ element: String, in xml: String) -> [String] {
        var values: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(element)>"),
            let close = rest.range(of: "</\(element)>", range: open.upperBound..<rest.endIndex)
        {
            values.append(unescape(String(rest[open.upperBound..<close.lowerBound])))
            rest = rest[close.upperBound...]
        }
        return values
    }

    static func first(_ element: String, in xml: String) -> String? { all(element, in: xml).first }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
