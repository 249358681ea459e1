import Clients
import Foundation
import TestSupport
import Testing

@testable import Gateway

@Suite struct ConfigurationTests {
    static let secret = "0123456789abcdef0123456789abcdef"

    func load(_ arguments: [String] = [], environment: [String: String] = [:]) async throws -> GatewayConfiguration {
        guard
            case .run(let configuration) = try await GatewayConfiguration.load(
                arguments: ["kubin-gateway"] + arguments, environment: environment)
        else { throw TestFailure("not a run invocation") }
        return configuration
    }

    func problems(_ arguments: [String] = [], environment: [String: String] = [:]) async -> [ConfigurationError.Problem]
    {
        do {
            _ = try await GatewayConfiguration.load(arguments: ["kubin-gateway"] + arguments, environment: environment)
            return []
        } catch {
            return error.problems
        }
    }

    func temporaryFile(_ name: String, _ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + UUID().uuidString + "-" + name
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func everyDefaultIsOneOfItsKeysOwnValues() {
        #expect(SettingsTable.rows.count == Set(SettingsTable.rows.map(\.key)).count, "one row a key")
        for row in SettingsTable.rows {
            #expect(row.accepts(row.defaultValue), "\(row.key): '\(row.defaultValue)'")
        }
    }

    /// The README's table of keys states defaults too: each must be the settings table's.
    @Test func theREADMEStatesTheDefaultsOfTheSettingsTable() throws {
        let readme = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "## Configuration").dropFirst().first)
        let defaults = Dictionary(uniqueKeysWithValues: SettingsTable.rows.map { ($0.key, $0.defaultValue) })
        var checked = 0
        for row in section.split(separator: "\n") where row.hasPrefix("| `") {
            let columns = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard columns.count >= 2 else { continue }
            let keys = columns[0].split(separator: "`", omittingEmptySubsequences: false).enumerated().filter {
                $0.offset % 2 == 1
            }.map(\.element)
                .map(String.init).filter { defaults[$0] != nil }
            let stated = columns[1].split(separator: ",").map { text -> String in
                let value = text.trimmingCharacters(in: .whitespaces)
                return value.hasPrefix("empty") ? "" : value.trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            }
            guard keys.count == stated.count else { continue }
            for (key, value) in zip(keys, stated) {
                #expect(defaults[key] == value, "README says \(key) defaults to '\(value)'")
                checked += 1
            }
        }
        #expect(checked >= 15, "the README's table was found")
    }

    @Test func defaultsRunEverythingEmbeddedOnLoopback() async throws {
        let configuration = try await load()
        #expect(
            SettingValues.isLoopback(configuration.http.host) && SettingValues.isLoopback(configuration.metrics.host))
        let directory = configuration.dataDirectory
        #expect(configuration.metadata == .sqlite(path: directory + "/metadata.sqlite"))
        #expect(configuration.storage == .directory(path: directory + "/storage"))
        #expect(configuration.analytics == .sqlite(path: directory + "/analytics.sqlite"))
        guard case .inProcess = configuration.cache else {
            Issue.record("the default cache is \(configuration.cache)")
            return
        }
        #expect(configuration.auth.isDevelopment && configuration.tls == nil)
    }

    @Test func anUnknownKeyIsRefusedByName() {
        #expect(throws: ConfigurationError.self) { try GatewayConfiguration(raw: ["uploads.maxConcurent": "3"]) }
        do {
            _ = try GatewayConfiguration(raw: ["uploads.maxConcurent": "3", "http.port": "x"])
        } catch {
            #expect(error.problems.map(\.key) == ["uploads.maxConcurent", "http.port"])
        }
    }

    @Test func commandLineBeatsEnvironmentBeatsFileBeatsDefaults() async throws {
        let yaml = try temporaryFile(
            "kubin.yaml",
            """
            http:
              host: 0.0.0.0
              port: 1000
            uploads:
              maxConcurrent: 7
              maxBytes: 10MiB
            log:
              level: debug
            """)
        defer { try? FileManager.default.removeItem(atPath: yaml) }
        let configuration = try await load(
            ["--config-file", yaml, "--http-port", "3000"],
            environment: [
                "KUBIN_HTTP_PORT": "2000", "KUBIN_UPLOADS_MAX_CONCURRENT": "8", "KUBIN_DATA_DIR": "/srv/kubin",
                "KUBIN_AUTH_HS256_SECRET": Self.secret,
            ])
        #expect(configuration.http.port == 3000)  // command line
        #expect(configuration.uploads.maxConcurrent == 8)  // environment over file
        #expect(configuration.http.host == "0.0.0.0")  // file
        #expect(configuration.uploads.maxBytes == 10 << 20)  // file
        #expect(configuration.logLevel == .debug)  // file
        #expect(configuration.dataDirectory == "/srv/kubin")
        #expect(configuration.metadata == .sqlite(path: "/srv/kubin/metadata.sqlite"))
        #expect(configuration.shutdown.drainDelay == .zero)  // default
    }

    @Test func aJSONFileMayUseNumbersAndNesting() async throws {
        let json = try temporaryFile(
            "kubin.json", #"{"http": {"port": 9090}, "uploads": {"maxConcurrent": 12}, "shutdown.gracePeriod": "5s"}"#)
        defer { try? FileManager.default.removeItem(atPath: json) }
        let configuration = try await load(environment: ["KUBIN_CONFIG_FILE": json])
        #expect(configuration.http.port == 9090)
        #expect(configuration.uploads.maxConcurrent == 12)
        #expect(configuration.shutdown.gracePeriod == .seconds(5))
    }

    @Test func everyEnvironmentVariableAndFlagThatHelpNamesIsRead() async throws {
        let routingFile = try temporaryFile(
            "routing.yaml",
            "upstreams: {a: {instances: [{url: 'http://10.0.0.1:80'}]}}\nroutes: [{name: a, pathPrefix: /a, upstream: a}]"
        )
        defer { try? FileManager.default.removeItem(atPath: routingFile) }
        let samples: [String: String] = [
            "routing.file": routingFile, "routing.reloadInterval": "5s", "routing.maxConnectionsPerInstance": "32",
            "routing.dnsServer": "10.96.0.10:53", "routing.trustedProxies": "10.0.0.0/8",
            "config.file": "", "http.host": "10.0.0.1", "http.port": "1234", "http.idleTimeout": "9s",
            "data.dir": "/data", "metadata.url": "sqlite:/m.db", "storage.url": "file:///objects",
            "cache.url": "memory:", "cache.maxBytes": "1MiB", "cache.localTTL": "250ms", "uploads.maxConcurrent": "3",
            "uploads.maxBytes": "5MB", "uploads.maxConcurrentPerPrincipal": "2", "uploads.bodyTimeout": "5s",
            "uploads.minBytesPerSecond": "1KiB",
            "uploads.retryAfter": "4s", "shutdown.drainDelay": "2s", "shutdown.gracePeriod": "3m",
            "readiness.interval": "500ms", "readiness.timeout": "1s", "log.level": "warning",
            "analytics.url": "sqlite:/a.db", "ingest.concurrency": "4", "ingest.lease": "90s", "query.timeout": "3s",
            "query.branchTimeout": "700ms", "auth.jwks": "/etc/kubin/jwks.json", "auth.hs256.secret": Self.secret,
            "auth.issuer": "https://id.example", "auth.audience": "kubin", "auth.tenantClaim": "org",
            "auth.leeway": "30s", "auth.maxTokenLifetime": "12h", "auth.jwksCAFile": "/etc/kubin/ca.pem",
            "auth.jwksRefresh": "10m",
            "auth.jwksMinRefresh": "1m", "storage.accessKeyId": "AKIDEXAMPLE",
            "storage.secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "storage.sessionToken": "FwoGZXIvYXdz",
            "cors.allowedOrigins": "https://ui.example.com", "cors.maxAge": "5m", "http.headerTimeout": "5s",
            "http.maxHeaderBytes": "16KiB", "http.maxURLBytes": "4KiB", "http.maxBodyBytes": "1MiB",
            "http.maxConnections": "500", "metrics.host": "0.0.0.0", "metrics.port": "9100",
            "rateLimit.query": "50/1s", "rateLimit.upload": "off", "rateLimit.admin": "10/1h",
            "rateLimit.expectedReplicas": "3", "tls.certificateFile": "/etc/tls/tls.crt",
            "tls.privateKeyFile": "/etc/tls/tls.key", "tls.reloadInterval": "30s",
            "tls.clientCAFile": "/etc/tls/ca.crt",
            "tls.clientScopes": "snapshots:read,snapshots:write", "auth.disabled": "false",
            "stores.breakerWindow": "30s", "stores.breakerMinimumCalls": "5", "stores.breakerFailurePercent": "25",
            "stores.breakerSlowCall": "2s", "stores.breakerCoolDown": "10s", "stores.breakerProbes": "1",
            "stores.maxConcurrentCalls": "64", "stores.retryAttempts": "3", "stores.callTimeout": "3s",
        ]
        #expect(Set(samples.keys) == Set(SettingsTable.rows.map(\.key)), "a sample for every setting")
        let help = GatewayConfiguration.helpText
        for setting in SettingsTable.rows {
            #expect(
                help.contains(setting.environmentVariable) && help.contains(setting.flag) && help.contains(setting.key))
            #expect(help.contains("default: \(setting.defaultValue.isEmpty ? "(empty)" : setting.defaultValue)"))
            let value = samples[setting.key]!
            // An identity provider, so that hosts other than loopback are allowed.
            // S3 credentials come in pairs.
            let provider = [
                "KUBIN_AUTH_HS256_SECRET": Self.secret, "KUBIN_STORAGE_ACCESS_KEY_ID": "AKID",
                "KUBIN_STORAGE_SECRET_ACCESS_KEY": "secret", "KUBIN_TLS_CERTIFICATE_FILE": "/tls.crt",
                "KUBIN_TLS_PRIVATE_KEY_FILE": "/tls.key",
            ]
            let viaEnvironment = try await load(
                environment: provider.merging([setting.environmentVariable: value]) { $1 })
            #expect(viaEnvironment.rawValues[setting.key] == value, "\(setting.environmentVariable)")
            let viaFlag = try await load([setting.flag, value], environment: provider)
            #expect(viaFlag.rawValues[setting.key] == value, "\(setting.flag)")
        }
        let configuration = try await load(
            environment: Dictionary(
                uniqueKeysWithValues: SettingsTable.rows.map { ($0.environmentVariable, samples[$0.key]!) }))
        #expect(configuration.metadata == .sqlite(path: "/m.db"))
        #expect(configuration.storage == .directory(path: "/objects"))
        #expect(configuration.readiness.interval == .milliseconds(500))
        #expect(configuration.analytics == .sqlite(path: "/a.db"))
        #expect(configuration.ingest.concurrency == 4 && configuration.ingest.lease == .seconds(90))
        #expect(configuration.query.timeout == .seconds(3) && configuration.query.branchTimeout == .milliseconds(700))
        #expect(configuration.shutdown.gracePeriod == .seconds(180))
        #expect(configuration.uploads.maxBytes == 5_000_000)
        #expect(configuration.routing.table.routes.map(\.name) == ["a"])
        #expect(configuration.routing.maxConnectionsPerInstance == 32)
        #expect(configuration.routing.dnsServer.map { $0 == ("10.96.0.10", 53) } == true)
    }

    @Test func badValuesAreAllReportedByKeyWithWhatIsAllowed() async {
        let found = await problems(environment: [
            "KUBIN_HTTP_PORT": "eighty", "KUBIN_UPLOADS_MAX_BYTES": "lots", "KUBIN_LOG_LEVEL": "loud",
            "KUBIN_SHUTDOWN_GRACE_PERIOD": "-1s", "KUBIN_UPLOADS_MAX_CONCURRENT": "0",
        ])
        #expect(
            found.map(\.key) == [
                "http.port", "uploads.maxConcurrent", "uploads.maxBytes", "shutdown.gracePeriod", "log.level",
            ])
        let port = found.first { $0.key == "http.port" }?.message ?? ""
        #expect(port.contains("'eighty'") && port.contains("0 to 65535") && port.contains("KUBIN_HTTP_PORT"))
        #expect(found.first { $0.key == "log.level" }?.message.contains("warning") == true)
        let text = ConfigurationError(problems: found).description
        #expect(text.hasPrefix("Invalid configuration:") && text.contains("--help"))
    }

    @Test func theHostMustBeAnAddressOrAName() async throws {
        for good in ["0.0.0.0", "::1", "::", "kubin-gateway.default.svc", "localhost"] {
            let environment = ["KUBIN_HTTP_HOST": good, "KUBIN_AUTH_HS256_SECRET": Self.secret]
            #expect(try await load(environment: environment).http.host == good)
        }
        for bad in ["", "not a host", "-bad.example", "a..b", "http://x", String(repeating: "a", count: 64)] {
            #expect(await problems(environment: ["KUBIN_HTTP_HOST": bad]).map(\.key) == ["http.host"], "\(bad)")
        }
    }

    @Test func s3CredentialsMayBeSettingsAndComeInPairs() async throws {
        let configuration = try await load(environment: [
            "KUBIN_STORAGE_ACCESS_KEY_ID": "AKIDEXAMPLE", "KUBIN_STORAGE_SECRET_ACCESS_KEY": "s3cr3t",
        ])
        #expect(configuration.storageCredentials?.accessKeyID == "AKIDEXAMPLE")
        #expect(configuration.storageCredentials?.secretAccessKey == "s3cr3t")
        #expect(configuration.storageCredentials?.sessionToken == nil)
        #expect(!configuration.printableSettings.map(\.value).contains("s3cr3t"))
        #expect(try await load().storageCredentials == nil, "none set and no AWS_* variables")
        let fromEnvironment = try await load(environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"])
        #expect(fromEnvironment.storageCredentials?.accessKeyID == "AKID")
        let s3 = ["KUBIN_STORAGE_URL": "s3://kubin?endpoint=http://127.0.0.1:9000"]
        #expect(await problems(environment: s3).map(\.key) == ["storage.accessKeyId"], "S3 needs a key")
        #expect(
            await problems(environment: ["KUBIN_STORAGE_SECRET_ACCESS_KEY": "s3cr3t"]).map(\.key) == [
                "storage.accessKeyId"
            ])
    }

    @Test func tlsNeedsACertificateAndAKeyAndClientCertificatesNeedTLS() async throws {
        #expect(
            await problems(environment: ["KUBIN_TLS_CERTIFICATE_FILE": "/tls.crt"]).map(\.key) == ["tls.privateKeyFile"]
        )
        #expect(await problems(environment: ["KUBIN_TLS_CLIENT_CAFILE": "/ca.crt"]).map(\.key) == ["tls.clientCAFile"])
        #expect(
            await problems(environment: [
                "KUBIN_TLS_CERTIFICATE_FILE": "/tls.crt", "KUBIN_TLS_PRIVATE_KEY_FILE": "/tls.key",
                "KUBIN_TLS_CLIENT_SCOPES": "snapshots:everything",
            ]).map(\.key) == ["tls.clientScopes"])
        let configuration = try await load(environment: [
            "KUBIN_TLS_CERTIFICATE_FILE": "/tls.crt", "KUBIN_TLS_PRIVATE_KEY_FILE": "/tls.key",
        ])
        #expect(configuration.tls?.certificateFile == "/tls.crt" && configuration.tls?.clientCAFile == nil)
        #expect(try await load().tls == nil)
    }

    @Test func withoutAnIdentityProviderOnlyLoopbackMayBeBound() async throws {
        for host in ["0.0.0.0", "10.1.2.3", "kubin.example"] {
            let found = await problems(environment: ["KUBIN_HTTP_HOST": host])
            #expect(found.map(\.key) == ["http.host"], "\(host)")
            #expect(found.first?.message.contains("KUBIN_AUTH_JWKS") == true)
        }
        for host in ["127.0.0.1", "::1", "localhost"] {
            #expect(try await load(environment: ["KUBIN_HTTP_HOST": host]).auth.isDevelopment)
        }
        #expect(
            await problems(environment: ["KUBIN_AUTH_HS256_SECRET": "short"]).map(\.key) == ["auth.hs256.secret"])
        #expect(await problems(environment: ["KUBIN_AUTH_JWKS": "http://idp/jwks"]).map(\.key) == ["auth.jwks"])
    }

    @Test func unknownFlagsAndStrayArgumentsAreRefused() async {
        #expect(await problems(["--htpp-port", "1"]).map(\.key) == ["--htpp-port"])
        #expect(await problems(["serve"]).map(\.key) == ["serve"])
        #expect(await problems(["--http-port=99"]).isEmpty)
    }

    @Test func aMissingOrUnknownConfigFileIsRefused() async throws {
        #expect(await problems(["--config-file", "/nonexistent/kubin.yaml"]).map(\.key) == ["config.file"])
        let toml = try temporaryFile("kubin.toml", "x = 1")
        defer { try? FileManager.default.removeItem(atPath: toml) }
        #expect(await problems(["--config-file", toml]).first?.message.contains(".json, .yaml or .yml") == true)
    }

    @Test func helpIsRecognised() async throws {
        guard
            case .help = try await GatewayConfiguration.load(arguments: ["kubin-gateway", "--help"], environment: [:])
        else {
            Issue.record("--help did not ask for help")
            return
        }
    }

    @Test func credentialsInURLsAreNeverPrinted() async {
        #expect(
            SettingValues.redactingPassword(in: "postgres://kubin:hunter2@db:5432/kubin")
                == "postgres://kubin:<redacted>@db:5432/kubin")
        #expect(SettingValues.redactingPassword(in: "redis://:s3cret@cache/0") == "redis://:<redacted>@cache/0")
        #expect(SettingValues.redactingPassword(in: "file:///data") == "file:///data")
        let secret = SettingsTable.shared.authHS256Secret
        #expect(secret.display("hunter2") == "<redacted>")
        // A refused URL is quoted in the error, without its password.
        let found = await problems(environment: ["KUBIN_METADATA_URL": "postgres://kubin:hunter2@db"])  // no database
        #expect(found.map(\.key) == ["metadata.url"])
        #expect(!ConfigurationError(problems: found).description.contains("hunter2"))
        #expect(ConfigurationError(problems: found).description.contains("postgres://kubin:<redacted>@db"))
    }

    @Test func aPostgresURLSelectsPostgres() async throws {
        let configuration = try await load(environment: [
            "KUBIN_METADATA_URL": "postgresql://kubin:p%40ss@db.internal:5433/kubin?sslmode=require"
        ])
        guard case .postgres(let location) = configuration.metadata else {
            Issue.record("expected PostgreSQL, got \(configuration.metadata)")
            return
        }
        #expect(location.host == "db.internal" && location.port == 5433 && location.database == "kubin")
        #expect(location.username == "kubin" && location.password == "p@ss" && location.tls == .require)
        #expect(!"\(location)".contains("p@ss") && !"\(location)".contains("p%40ss"))
        #expect(configuration.printableSettings.first { $0.key == "metadata.url" }?.value.contains("p%40ss") == false)
        #expect(PostgresLocation(url: "postgres://db/kubin?sslmode=sometimes") == nil)
    }

    @Test func aClickHouseURLSelectsClickHouse() async throws {
        let configuration = try await load(environment: [
            "KUBIN_ANALYTICS_URL": "clickhouse://app:hunter2@ch:8123/kubin"
        ])
        #expect(
            configuration.analytics == .clickHouse(ClickHouseLocation(url: "clickhouse://app:hunter2@ch:8123/kubin")!))
        #expect(configuration.printableSettings.first { $0.key == "analytics.url" }?.value.contains("hunter2") == false)
    }

    @Test func anS3URLSelectsS3() async throws {
        let configuration = try await load(
            ["--storage-url", "s3://kubin-prod/snapshots?region=eu-west-3"],
            environment: ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"])
        #expect(configuration.storage == .s3(S3Location(url: "s3://kubin-prod/snapshots?region=eu-west-3")!))
        let found = await problems(environment: ["KUBIN_STORAGE_URL": "s3://Not_A_Bucket"])
        #expect(found.map(\.key) == ["storage.url"])
    }

    @Test func aRedisURLSelectsRedis() async throws {
        let configuration = try await load(["--cache-url", "rediss://:hunter2@cache:6380/2"])
        #expect(
            configuration.cache
                == .redis(
                    RedisLocation(url: "rediss://:hunter2@cache:6380/2")!, localMaxBytes: 64 << 20,
                    localTimeToLive: .seconds(1)))
        #expect(
            configuration.printableSettings.first { $0.key == "cache.url" }?.value
                == "rediss://:<redacted>@cache:6380/2")
        let found = await problems(environment: ["KUBIN_CACHE_URL": "redis://:hunter2@cache/notanumber"])
        #expect(found.map(\.key) == ["cache.url"])
        #expect(!ConfigurationError(problems: found).description.contains("hunter2"))
    }
}

@Suite struct SettingValuesTests {
    @Test func parsesSizesAndDurations() {
        #expect(SettingValues.bytes("4GiB") == 4 << 30)
        #expect(SettingValues.bytes("64 MiB") == 64 << 20)
        #expect(SettingValues.bytes("100MB") == 100_000_000)
        #expect(SettingValues.bytes("512") == 512)
        #expect(SettingValues.bytes("1.5GiB") == nil)
        #expect(SettingValues.bytes("-1") == nil)
        #expect(SettingValues.bytes("99999999999TiB") == nil)
        #expect(SettingValues.duration("500ms") == .milliseconds(500))
        #expect(SettingValues.duration("30") == .seconds(30))
        #expect(SettingValues.duration("2m") == .seconds(120))
        #expect(SettingValues.duration("1h") == .seconds(3600))
        #expect(SettingValues.duration("5 minutes") == nil)
        #expect(SettingValues.duration("") == nil)
    }

    @Test func boundsAreWrittenAsAnOperatorWouldWriteThem() {
        for duration: Duration in [.zero, .milliseconds(10), .milliseconds(1500), .seconds(90), .seconds(7200)] {
            #expect(SettingValues.duration(SettingValues.text(of: duration)) == duration, "\(duration)")
        }
        #expect(SettingValues.text(of: .seconds(600)) == "10m")
        for bytes: Int64 in [0, 256, 1024, 1 << 20, 3 << 30, 1 << 40, 1000] {
            #expect(SettingValues.bytes(SettingValues.text(ofBytes: bytes)) == bytes, "\(bytes)")
        }
        #expect(SettingValues.text(ofBytes: 64 << 20) == "64MiB")
    }
}
