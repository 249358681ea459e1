import Clients
import Foundation

extension GatewayConfiguration {
    /// Where metadata lives.
    package enum MetadataBackend: Sendable, Equatable {
        case sqlite(path: String)
        /// A PostgreSQL database shared by replicas.
        case postgres(PostgresLocation)

        /// Across a network (its calls get a time limit), not embedded.
        package var isNetworked: Bool { if case .postgres = self { true } else { false } }

        /// The backend `metadata.url` names: `sqlite:<path>` or `postgres://...`.
        static func named(by url: URLSetting) -> Self? {
            url.store(local: "sqlite", Self.sqlite, shared: ["postgres", "postgresql"]) {
                PostgresLocation(url: $0).map(Self.postgres)
            }
        }
    }

    /// Where archives live.
    package enum StorageBackend: Sendable, Equatable {
        /// A local directory.
        case directory(path: String)
        /// An S3-compatible bucket shared by replicas, reached with ``storageCredentials``.
        case s3(S3Location)

        /// Across a network (its calls get a time limit), not embedded.
        package var isNetworked: Bool { if case .s3 = self { true } else { false } }

        /// The backend `storage.url` names: `file:<path>` or `s3://...`.
        static func named(by url: URLSetting) -> Self? {
            url.store(local: "file", Self.directory, shared: ["s3"]) { S3Location(url: $0).map(Self.s3) }
        }
    }

    /// Where log lines and events live.
    package enum AnalyticsBackend: Sendable, Equatable {
        case sqlite(path: String)
        /// A ClickHouse server shared by replicas (its HTTP interface).
        case clickHouse(ClickHouseLocation)

        /// Across a network (its calls get a time limit), not embedded.
        package var isNetworked: Bool { if case .clickHouse = self { true } else { false } }

        /// The backend `analytics.url` names: `sqlite:<path>` or `clickhouse://...`.
        static func named(by url: URLSetting) -> Self? {
            url.store(local: "sqlite", Self.sqlite, shared: ["clickhouse", "clickhouses"]) {
                ClickHouseLocation(url: $0).map(Self.clickHouse)
            }
        }
    }

    /// Where cached answers (and, with Redis, the rate limits) live.
    package enum CacheBackend: Sendable, Equatable {
        /// This process's memory, bounded in bytes.
        case inProcess(maxBytes: Int)
        /// A Redis server shared by replicas (its own memory policy bounds it), with an in-process tier of
        /// `localMaxBytes` in front whose entries live at most `localTimeToLive` (zero: no local tier).
        case redis(RedisLocation, localMaxBytes: Int, localTimeToLive: Duration)

        /// The backend of `cache.url`, bounded by `cache.maxBytes`, with `cache.localTTL`.
        init(_ read: inout SettingsReader) {
            let maxBytes = Int(read(\.cacheMaxBytes))
            let localTimeToLive = read(\.cacheLocalTTL)
            switch read(\.cacheURL) {
            case .redis(let location)?:
                self = .redis(location, localMaxBytes: maxBytes, localTimeToLive: localTimeToLive)
            case .memory?, nil: self = .inProcess(maxBytes: maxBytes)
            }
        }
    }

    /// What `cache.url` names.
    package enum SharedCache: Sendable {
        /// `memory:`: this process's own.
        case memory
        /// `redis://` or `rediss://`.
        case redis(RedisLocation)

        static func named(by url: URLSetting) -> Self? {
            if url.scheme == "memory" { return .memory }
            return ["redis", "rediss"].contains(url.scheme) ? RedisLocation(url: url.text).map(Self.redis) : nil
        }
    }

    /// The S3 credentials of the settings (a pair, or none), else of the `AWS_*` variables of `environment`; a store
    /// on S3 without either is refused.
    static func storageCredentials(
        _ read: inout SettingsReader, environment: [String: String], storage: StorageBackend
    ) -> SigV4Signer.Credentials? {
        let accessKey = read(\.storageAccessKeyID)
        let secretKey = read(\.storageSecretAccessKey)
        let sessionToken = read(\.storageSessionToken)
        switch (accessKey, secretKey) {
        case (let accessKey?, let secretKey?):
            return .init(accessKeyID: accessKey, secretAccessKey: secretKey, sessionToken: sessionToken)
        case (nil, .some): read.refuse(\.storageAccessKeyID, expected: "set together with storage.secretAccessKey")
        case (.some, nil): read.refuse(\.storageSecretAccessKey, expected: "set together with storage.accessKeyId")
        case (nil, nil):
            if let key = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"] {
                return .init(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
            }
            if case .s3 = storage {
                read.refuse(
                    \.storageAccessKeyID,
                    expected: "an access key for the s3:// store: set storage.accessKeyId and storage.secretAccessKey, "
                        + "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
            }
        }
        return nil
    }
}
