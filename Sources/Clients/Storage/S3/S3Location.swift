import Foundation

/// Where an S3 bucket is, parsed from `s3://bucket[/prefix]?endpoint=http://host:port&region=us-east-1&style=path`.
///
/// `endpoint` defaults to AWS (`https://s3.<region>.amazonaws.com`), `region` to `us-east-1`, `style` to
/// `virtual` (bucket in the host name) on AWS and `path` elsewhere. Credentials are not part of the URL: they come
/// from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
package struct S3Location: Sendable, Equatable, CustomStringConvertible {
    package var bucket: String
    /// Prepended to every key (with a `/`), so several installations can share a bucket.
    package var prefix: String
    package var endpoint: URL
    package var region: String
    package var usesPathStyle: Bool

    package init?(url text: String) {
        guard let components = URLComponents(string: text), components.scheme == "s3",
            let bucket = components.host, Self.isBucketName(bucket)
        else { return nil }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let region = query["region"] ?? "us-east-1"
        guard !region.isEmpty, region.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else { return nil }
        let endpointText = query["endpoint"] ?? "https://s3.\(region).amazonaws.com"
        guard let endpoint = URL(string: endpointText), ["http", "https"].contains(endpoint.scheme),
            endpoint.host != nil
        else { return nil }
        let style = query["style"] ?? (query["endpoint"] == nil ? "virtual" : "path")
        guard ["path", "virtual"].contains(style) else { return nil }
        self.bucket = bucket
        self.prefix = components.path.split(separator: "/").joined(separator: "/")
        self.endpoint = endpoint
        self.region = region
        self.usesPathStyle = style == "path"
    }

    package var description: String {
        "s3://\(bucket)\(prefix.isEmpty ? "" : "/" + prefix) at \(endpoint.absoluteString) (\(region), "
            + "\(usesPathStyle ? "path" : "virtual")-style)"
    }

    /// Lowercase letters, digits, dots and hyphens, 3 to 63 long (S3's rule for new buckets).
    private static func isBucketName(_ name: String) -> Bool {
        (3...63).contains(name.count)
            && name.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-" }
    }
}
