import Foundation
import KubinModel
import Logging
import PostgresNIO
import TestSupport
import Testing

@testable import Clients

/// The implementations of ``MetadataStore``, each on an empty database; every behaviour test runs against all.
enum MetadataStores {
    static let sqlite = StoreFactory<any MetadataStore>(name: "SQLite") {
        let directory = try TemporaryDirectory()
        let store = try await SQLiteMetadataStore.open(
            path: directory.path + "/metadata.sqlite", logger: Logger(label: "test"))
        return (
            store,
            {
                try await store.close(); directory.remove()
            }
        )
    }

    static let postgres = StoreFactory<any MetadataStore>(name: "PostgreSQL") { body in
        try await TestServers.withPostgresDatabase { location in
            let store = try await PostgresMetadataStore.open(location, logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await store.client.run() }
                defer { group.cancelAll() }
                try await body(store)
            }
        }
    }

    static let all = [sqlite, postgres]
}

func makeSnapshot(
    cluster: String = "prod", status: SnapshotStatus = .stored, createdAt: Date, sha256: String? = nil
) -> Snapshot {
    let id = SnapshotID.generate(at: createdAt)
    return Snapshot(
        id: id, cluster: ClusterName(validating: cluster)!, status: status, format: .gzip, sizeBytes: 1234,
        sha256: sha256 ?? String(repeating: "a", count: 64), createdAt: createdAt, updatedAt: createdAt)
}

@Suite struct MetadataStoreBehaviourTests {
    @Test(arguments: MetadataStores.all)
    func storesAndReadsBackEveryField(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            var snapshot = makeSnapshot(createdAt: Date(timeIntervalSince1970: 1_700_000_000.125))
            snapshot.failureReason = "gzip stream is truncated"
            snapshot.status = .failed
            try await store.insertSnapshot(snapshot, idempotencyKey: nil)
            #expect(try await store.snapshot(snapshot.id) == snapshot)
            #expect(try await store.snapshot(SnapshotID.generate(at: Date())) == nil)
            try await store.checkHealth()
        }
    }

    @Test(arguments: MetadataStores.all)
    func pagesNewestFirstWithoutGapsOrRepeats(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            var inserted: [Snapshot] = []
            for index in 0..<11 {
                // Pairs share a timestamp so the id must break ties.
                let snapshot = makeSnapshot(createdAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(index / 2)))
                try await store.insertSnapshot(snapshot, idempotencyKey: nil)
                inserted.append(snapshot)
            }
            let expected = inserted.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }.map(\.id)
            var seen: [SnapshotID] = []
            var cursor: SnapshotCursor?
            var pages = 0
            repeat {
                let page = try await store.listSnapshots(SnapshotQuery(limit: 3, after: cursor))
                seen += page.items.map(\.id)
                cursor = page.nextCursor.map { SnapshotCursor(token: $0)! }
                pages += 1
                #expect(page.items.count == 3 || page.nextCursor == nil)
            } while cursor != nil
            #expect(seen == expected)
            #expect(pages == 4)
        }
    }

    @Test(arguments: MetadataStores.all)
    func filtersByClusterAndStatus(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            let base = Date(timeIntervalSince1970: 1_700_000_000)
            let snapshots = [
                makeSnapshot(cluster: "a", status: .stored, createdAt: base),
                makeSnapshot(cluster: "a", status: .ready, createdAt: base + 1),
                makeSnapshot(cluster: "b", status: .stored, createdAt: base + 2),
            ]
            for snapshot in snapshots { try await store.insertSnapshot(snapshot, idempotencyKey: nil) }
            let inA = try await store.listSnapshots(SnapshotQuery(cluster: ClusterName(validating: "a")))
            #expect(inA.items.map(\.id) == [snapshots[1].id, snapshots[0].id])
            let stored = try await store.listSnapshots(SnapshotQuery(status: .stored))
            #expect(stored.items.map(\.id) == [snapshots[2].id, snapshots[0].id])
            let both = try await store.listSnapshots(
                SnapshotQuery(cluster: ClusterName(validating: "b"), status: .ready))
            #expect(both.items.isEmpty && both.nextCursor == nil)
        }
    }

    @Test(arguments: MetadataStores.all)
    func listsOnlyTheAskedTenantsSnapshots(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            let base = Date(timeIntervalSince1970: 1_700_000_000)
            var snapshots: [Snapshot] = []
            for (index, tenant) in ["acme", "globex", "acme", "default"].enumerated() {
                var snapshot = makeSnapshot(createdAt: base + Double(index))
                snapshot.tenant = TenantID(validating: tenant)!
                try await store.insertSnapshot(snapshot, idempotencyKey: nil)
                snapshots.append(snapshot)
            }
            #expect(try await store.snapshot(snapshots[1].id)?.tenant.rawValue == "globex")
            let acme = try await store.listSnapshots(SnapshotQuery(tenant: TenantID(validating: "acme")))
            #expect(acme.items.map(\.id) == [snapshots[2].id, snapshots[0].id])
            let page = try await store.listSnapshots(SnapshotQuery(tenant: TenantID(validating: "acme"), limit: 1))
            let next = try await store.listSnapshots(
                SnapshotQuery(
                    tenant: TenantID(validating: "acme"), limit: 1,
                    after: page.nextCursor.flatMap(SnapshotCursor.init(token:))))
            #expect(next.items.map(\.id) == [snapshots[0].id] && next.nextCursor == nil)
            #expect(try await store.listSnapshots(SnapshotQuery(tenant: TenantID(validating: "initech"))).items.isEmpty)
            #expect(try await store.listSnapshots(SnapshotQuery()).items.count == 4, "no tenant: every tenant's")
        }
    }

    @Test(arguments: MetadataStores.all)
    func apiKeysAreStoredListedByTenantAndRevokedOnce(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            let acme = TenantID(validating: "acme")!
            let created = Date(timeIntervalSince1970: 1_700_000_000.5)
            let keys = [
                APIKey(
                    id: "00000000000000a1", tenant: acme, scopes: [.snapshotsRead], name: "ci reader",
                    secretSHA256: String(repeating: "1", count: 64), createdAt: created),
                APIKey(
                    id: "00000000000000b2", tenant: TenantID(validating: "globex")!,
                    scopes: [.snapshotsRead, .snapshotsWrite], name: "",
                    secretSHA256: String(repeating: "2", count: 64),
                    createdAt: created + 1),
                APIKey(
                    id: "00000000000000c3", tenant: acme, scopes: [.snapshotsWrite], name: "uploader ✓",
                    secretSHA256: String(repeating: "3", count: 64), createdAt: created + 2),
            ]
            for key in keys { try await store.insertAPIKey(key) }
            await #expect(throws: (any Error).self) { try await store.insertAPIKey(keys[0]) }
            #expect(try await store.apiKey(id: keys[1].id) == keys[1])
            #expect(try await store.apiKey(id: "ffffffffffffffff") == nil)
            #expect(try await store.listAPIKeys(tenant: acme) == [keys[0], keys[2]])
            #expect(try await store.listAPIKeys(tenant: nil).map(\.id) == keys.map(\.id))

            let revokedAt = created + 10
            #expect(try await store.revokeAPIKey(id: keys[0].id, at: revokedAt))
            #expect(try await !store.revokeAPIKey(id: keys[0].id, at: revokedAt + 1), "already revoked")
            #expect(try await !store.revokeAPIKey(id: "ffffffffffffffff", at: revokedAt))
            #expect(try await store.apiKey(id: keys[0].id)?.revokedAt == revokedAt)
            #expect(try await store.apiKey(id: keys[2].id)?.revokedAt == nil)
        }
    }

    @Test(arguments: MetadataStores.all)
    func idempotencyKeysAreUniqueAndGoWithTheirSnapshot(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            let first = makeSnapshot(createdAt: Date(timeIntervalSince1970: 1_700_000_000))
            let record = IdempotencyRecord(key: "retry-1", sha256: first.sha256, snapshotID: first.id)
            try await store.insertSnapshot(first, idempotencyKey: record)
            #expect(try await store.idempotencyRecord(forKey: "retry-1") == record)

            let second = makeSnapshot(createdAt: Date(timeIntervalSince1970: 1_700_000_001))
            await #expect {
                try await store.insertSnapshot(
                    second, idempotencyKey: IdempotencyRecord(key: "retry-1", sha256: "b", snapshotID: second.id))
            } throws: { ($0 as? MetadataStoreError)?.isIdempotencyKeyConflict == true }
            #expect(try await store.snapshot(second.id) == nil, "a refused insert leaves no snapshot row")

            #expect(try await store.deleteSnapshot(first.id))
            #expect(try await store.snapshot(first.id) == nil)
            #expect(try await store.idempotencyRecord(forKey: "retry-1") == nil)
            #expect(try await !store.deleteSnapshot(first.id))
        }
    }

    @Test(arguments: MetadataStores.all)
    func concurrentInsertsWithOneKeyAdmitExactlyOne(_ factory: StoreFactory<any MetadataStore>) async throws {
        try await factory.with { store in
            let results = await withTaskGroup(of: Bool.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        let snapshot = makeSnapshot(
                            createdAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(index)))
                        let record = IdempotencyRecord(key: "same", sha256: snapshot.sha256, snapshotID: snapshot.id)
                        return (try? await store.insertSnapshot(snapshot, idempotencyKey: record)) != nil
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            let stored = try await store.listSnapshots(SnapshotQuery(limit: 100)).items
            #expect(stored.count == 1)
        }
    }
}

@Suite struct SQLiteMetadataStoreTests {
    @Test func migratesOnceAndKeepsDataAcrossReopens() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/metadata.sqlite"
        let snapshot = makeSnapshot(createdAt: Date(timeIntervalSince1970: 1_700_000_000))
        let first = try await SQLiteMetadataStore.open(path: path, logger: Logger(label: "test"))
        try await closing(first.close) { try await first.insertSnapshot(snapshot, idempotencyKey: nil) }

        let second = try await SQLiteMetadataStore.open(path: path, logger: Logger(label: "test"))
        let reread = try await closing(second.close) { try await second.snapshot(snapshot.id) }
        #expect(reread == snapshot)

        let database = try await SQLiteDatabase.open(
            path: path, migrations: SQLiteMetadataStore.migrations, logger: Logger(label: "test"))
        let versions = try await closing(database.close) {
            try await database.query("SELECT version FROM schema_migrations").compactMap {
                $0.column("version")?.integer
            }
        }
        #expect(versions == SQLiteMetadataStore.migrations.map(\.version))
    }

    @Test func refusesADatabaseFromANewerGateway() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/metadata.sqlite"
        let future =
            SQLiteMetadataStore.migrations + [
                .init(version: 99, name: "from the future", statements: ["CREATE TABLE future (x INTEGER)"])
            ]
        let database = try await SQLiteDatabase.open(path: path, migrations: future, logger: Logger(label: "test"))
        try await database.close()
        await #expect {
            _ = try await SQLiteMetadataStore.open(path: path, logger: Logger(label: "test"))
        } throws: { "\($0)".contains("schema version 99 is newer") }
    }

    @Test func aFailedMigrationLeavesTheSchemaUntouched() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/metadata.sqlite"
        let broken = [
            Migration(
                version: 1, name: "half broken", statements: ["CREATE TABLE a (x INTEGER)", "NOT SQL AT ALL"])
        ]
        await #expect(throws: (any Error).self) {
            _ = try await SQLiteDatabase.open(path: path, migrations: broken, logger: Logger(label: "test"))
        }
        let database = try await SQLiteDatabase.open(path: path, migrations: [], logger: Logger(label: "test"))
        let tables = try await closing(database.close) {
            try await database.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'a'")
        }
        #expect(tables.isEmpty, "the migration's transaction rolled back")
    }

    /// A `SELECT` runs on the reader connection: it answers from the last commit while a write transaction is open,
    /// where one connection would have made it wait for the transaction.
    @Test(.timeLimit(.minutes(1))) func aReadDoesNotWaitForAnOpenWriteTransaction() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let migrations = [Migration(version: 1, name: "t", statements: ["CREATE TABLE t (x INTEGER)"])]
        let database = try await SQLiteDatabase.open(
            path: directory.path + "/db.sqlite", migrations: migrations, logger: Logger(label: "test"))
        let count = { try await database.query("SELECT count(*) AS n FROM t").first?.column("n")?.integer }
        try await closing(database.close) {
            let (entered, enter) = AsyncStream<Void>.makeStream()
            let (released, release) = AsyncStream<Void>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await database.transaction { transaction in
                        _ = try await transaction.query("INSERT INTO t (x) VALUES (1)")
                        enter.yield()
                        for await _ in released { break }
                    }
                }
                for await _ in entered { break }
                #expect(try await count() == 0, "the open transaction's row is not visible yet")
                release.yield()
                try await group.waitForAll()
            }
            #expect(try await count() == 1)
        }
    }
}

@Suite struct PostgresMetadataStoreTests {
    /// A TCP relay to `argv[1]` that swallows every byte once the file `argv[2]` exists, and then creates `argv[3]`:
    /// a server that stopped answering, as a black-holed network or a hung host.
    private static let blackHole = """
        import os, socket, sys, threading
        target, flag, swallowed = ('127.0.0.1', int(sys.argv[1])), sys.argv[2], sys.argv[3]
        server = socket.socket()
        server.bind(('127.0.0.1', 0))
        server.listen(64)
        print(server.getsockname()[1], flush=True)
        def pipe(source, sink):
            try:
                while data := source.recv(65536):
                    if os.path.exists(flag):
                        open(swallowed, 'w').close()
                        continue
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for side in (source, sink):
                    try: side.close()
                    except OSError: pass
        while True:
            client, _ = server.accept()
            upstream = socket.create_connection(target)
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        """

    /// postgres-nio writes a query without a promise: on a connection that has closed, its own `query` waits
    /// forever (this is what held a cancelled transaction's ROLLBACK). Ours fails at once.
    @Test(.timeLimit(.minutes(1))) func aQueryOnAClosedConnectionFailsInsteadOfWaiting() async throws {
        try await TestServers.withPostgresDatabase { location in
            let store = try await PostgresMetadataStore.open(location, logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await store.client.run() }
                defer { group.cancelAll() }
                try await store.client.withConnection { connection in
                    try await connection.close()
                    await #expect(throws: (any Error).self) {
                        _ = try await connection.collect(
                            PostgresQuery(unsafeSQL: "SELECT 1"), logger: Logger(label: "t"))
                    }
                    await #expect(throws: (any Error).self) {
                        try await connection.transaction(logger: Logger(label: "t")) {}
                    }
                }
                try await store.checkHealth()
            }
        }
    }

    /// postgres-nio does not cancel a running query: the store closes the connection of a cancelled call instead, so
    /// that a call to a server that stopped answering ends when its caller gives up (the time limit of its guard).
    @Test(.timeLimit(.minutes(1))) func aCancelledCallToAServerThatStoppedAnsweringEndsAtOnce() async throws {
        let directory = NSTemporaryDirectory() + "blackhole-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (flag, swallowed) = (directory + "/flag", directory + "/swallowed")
        try await TestServers.withPostgresDatabase { location in
            let relay = try BackgroundPython(
                script: Self.blackHole, arguments: [String(location.port), flag, swallowed])
            defer { _ = relay.stop() }
            var relayed = location
            relayed.port = relay.port
            let store = try await PostgresMetadataStore.open(relayed, logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await store.client.run() }
                defer { group.cancelAll() }
                try await store.checkHealth()
                FileManager.default.createFile(atPath: flag, contents: nil)
                try await withThrowingTaskGroup(of: Void.self) { calls in
                    calls.addTask { _ = try await store.apiKey(id: "stalled") }
                    // The query is out, and swallowed: only cancelling can end the call now.
                    try await poll("the query to be swallowed") { FileManager.default.fileExists(atPath: swallowed) }
                    calls.cancelAll()
                    await #expect(throws: (any Error).self) { try await calls.next() }
                }
            }
        }
    }

    /// Every pooled statement is bounded by the URL's `statement_timeout`: the server cancels a longer one, and the
    /// pool stays usable.
    @Test(.timeLimit(.minutes(1))) func aStatementRunningPastItsTimeoutIsCancelled() async throws {
        try await TestServers.withPostgresDatabase { location in
            var bounded = location
            bounded.statementTimeoutMilliseconds = 200
            let store = try await PostgresMetadataStore.open(bounded, logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await store.client.run() }
                defer { group.cancelAll() }
                await #expect {
                    for try await _ in try await store.client.query("SELECT pg_sleep(30)") {}
                } throws: { error in
                    (error as? PSQLError)?.serverInfo?[.sqlState] == "57014"  // query_canceled
                }
                try await store.checkHealth()
            }
        }
        #expect(PostgresLocation(url: "postgres://u@h/db?statement_timeout=2500")?.statementTimeoutMilliseconds == 2500)
        #expect(PostgresLocation(url: "postgres://u@h/db")?.statementTimeoutMilliseconds == 10_000)
        #expect(PostgresLocation(url: "postgres://u@h/db?statement_timeout=soon") == nil)
    }
}
