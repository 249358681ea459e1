import Foundation
import KubinModel
import PostgresNIO

extension PostgresMetadataStore {
    // MARK: Ingest jobs

    package func claimIngestJob(worker: String, now: Date, leaseUntil: Date) async throws -> IngestJob? {
        try await transaction { connection in
            var claim = PostgresStatement()
            claim.append(
                """
                UPDATE ingest_jobs SET lease_owner = \(try claim.bind(worker)),
                    lease_expires_at = \(try claim.bind(Self.micros(leaseUntil))), attempts = attempts + 1
                WHERE snapshot_id = (
                    SELECT snapshot_id FROM ingest_jobs WHERE lease_expires_at <= \(try claim.bind(Self.micros(now)))
                    ORDER BY created_at, snapshot_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING snapshot_id, attempts
                """)
            guard let job = try await connection.rows(claim, logger: logger).first else { return nil }
            var mark = PostgresStatement()
            mark.append(
                """
                UPDATE snapshots SET status = 'processing', updated_at = \(try mark.bind(Self.micros(now)))
                WHERE id = \(try mark.bind(try job.value("snapshot_id", as: String.self)))
                RETURNING \(Self.snapshotColumns)
                """)
            guard let row = try await connection.rows(mark, logger: logger).first else {
                throw MetadataStoreError.corruptRow("an ingest job has no snapshot")
            }
            return IngestJob(snapshot: try Self.decodeSnapshot(row), attempt: try job.value("attempts", as: Int.self))
        }
    }

    package func renewIngestLease(
        _ id: SnapshotID, worker: String, until: Date, progress: IngestProgress
    ) async throws -> Bool {
        var statement = PostgresStatement()
        statement.append(
            """
            WITH renewed AS (
                UPDATE ingest_jobs SET lease_expires_at = \(try statement.bind(Self.micros(until)))
                WHERE snapshot_id = \(try statement.bind(id.rawValue)) AND lease_owner = \(try statement.bind(worker))
                RETURNING snapshot_id)
            UPDATE snapshots SET progress_bytes = \(try statement.bind(progress.bytesRead)),
                progress_entries = \(try statement.bind(Int64(progress.entriesRead)))
            WHERE id IN (SELECT snapshot_id FROM renewed) RETURNING id
            """)
        return try await !rows(statement).isEmpty
    }

    package func releaseIngestJob(_ id: SnapshotID, worker: String) async throws {
        var statement = PostgresStatement()
        statement.append(
            """
            UPDATE ingest_jobs SET lease_owner = NULL, lease_expires_at = 0
            WHERE snapshot_id = \(try statement.bind(id.rawValue)) AND lease_owner = \(try statement.bind(worker))
            """)
        _ = try await rows(statement)
    }

    package func completeIngest(_ id: SnapshotID, worker: String, counts: SnapshotCounts, at: Date) async throws -> Bool
    {
        try await transaction { connection in
            guard try await self.removeJob(id, worker: worker, on: connection) else { return false }
            var figures = PostgresStatement()
            let snapshot = try figures.bind(id.rawValue)
            figures.append(
                """
                SELECT (SELECT count(*) FROM namespaces WHERE snapshot_id = \(snapshot)) AS namespaces,
                       (SELECT count(*) FROM resources WHERE snapshot_id = \(snapshot)) AS resources,
                       (SELECT count(*) FROM pods WHERE snapshot_id = \(snapshot)) AS pods,
                       (SELECT count(*) FROM pods WHERE snapshot_id = \(snapshot) AND orphan) AS orphans
                """)
            guard let row = try await connection.rows(figures, logger: logger).first else { return false }
            var counts = counts
            counts.namespaces = Int(try row.value("namespaces", as: Int64.self))
            counts.resources = Int(try row.value("resources", as: Int64.self))
            counts.pods = Int(try row.value("pods", as: Int64.self))
            counts.orphanPods = Int(try row.value("orphans", as: Int64.self))
            let encoded = String(decoding: try JSONEncoder().encode(counts), as: UTF8.self)
            var ready = PostgresStatement()
            ready.append(
                """
                UPDATE snapshots SET status = 'ready', updated_at = \(try ready.bind(Self.micros(at))),
                    counts = \(try ready.bind(encoded)), failure_reason = NULL
                WHERE id = \(try ready.bind(id.rawValue))
                """)
            try await connection.execute(ready, logger: logger)
            return true
        }
    }

    package func failIngest(_ id: SnapshotID, worker: String, reason: String, at: Date) async throws -> Bool {
        try await transaction { connection in
            guard try await self.removeJob(id, worker: worker, on: connection) else { return false }
            try await self.deleteIndexRows(id, on: connection)
            var failed = PostgresStatement()
            failed.append(
                """
                UPDATE snapshots SET status = 'failed', updated_at = \(try failed.bind(Self.micros(at))),
                    failure_reason = \(try failed.bind(reason)), counts = NULL
                WHERE id = \(try failed.bind(id.rawValue))
                """)
            try await connection.execute(failed, logger: logger)
            return true
        }
    }

    package func clearIndex(_ id: SnapshotID) async throws {
        try await transaction { connection in try await self.deleteIndexRows(id, on: connection) }
    }

    private func removeJob(_ id: SnapshotID, worker: String, on connection: PostgresConnection) async throws -> Bool {
        var statement = PostgresStatement()
        statement.append(
            """
            DELETE FROM ingest_jobs WHERE snapshot_id = \(try statement.bind(id.rawValue))
                AND lease_owner = \(try statement.bind(worker)) RETURNING snapshot_id
            """)
        return try await !connection.rows(statement, logger: logger).isEmpty
    }

    private func deleteIndexRows(_ id: SnapshotID, on connection: PostgresConnection) async throws {
        for table in ["namespaces", "resources", "pods"] {
            var statement = PostgresStatement()
            statement.append("DELETE FROM \(table) WHERE snapshot_id = \(try statement.bind(id.rawValue))")
            try await connection.execute(statement, logger: logger)
        }
    }

    // MARK: The index

    package func insertIndex(_ batch: IndexBatch, of id: SnapshotID) async throws {
        guard !batch.isEmpty else { return }
        try await transaction { connection in
            for chunk in batch.namespaces.chunks(of: 10_000) {
                var statement = PostgresStatement("INSERT INTO namespaces (snapshot_id, name) VALUES ")
                let snapshot = try statement.bind(id.rawValue)
                statement.append(try chunk.map { "(\(snapshot), \(try statement.bind($0)))" }.joined(separator: ", "))
                statement.append(" ON CONFLICT DO NOTHING")
                try await connection.execute(statement, logger: logger)
            }
            for chunk in batch.resources.chunks(of: 4000) {
                var statement = PostgresStatement(
                    """
                    INSERT INTO resources (snapshot_id, kind, namespace, name, api_version, uid, labels, created_at,
                                           owners, object_key, byte_offset, byte_length) VALUES
                    """)
                let snapshot = try statement.bind(id.rawValue)
                var rows: [String] = []
                for resource in chunk {
                    let record = resource.record
                    let values = [
                        snapshot, try statement.bind(record.kind), try statement.bind(record.namespace ?? ""),
                        try statement.bind(record.name), try statement.bind(record.apiVersion),
                        try statement.bind(record.uid),
                        try statement.bind(try IndexRows.encode(record.labels))
                            + "::jsonb",
                        try statement.bind(record.createdAtMicros),
                        try statement.bind(try IndexRows.encode(record.owners)),
                        try statement.bind(resource.location.objectKey), try statement.bind(resource.location.offset),
                        try statement.bind(resource.location.length),
                    ]
                    rows.append("(" + values.joined(separator: ", ") + ")")
                }
                statement.append(rows.joined(separator: ", "))
                statement.append(
                    """
                     ON CONFLICT (snapshot_id, kind, namespace, name) DO UPDATE SET api_version = excluded.api_version,
                        uid = excluded.uid, labels = excluded.labels, created_at = excluded.created_at,
                        owners = excluded.owners, object_key = excluded.object_key,
                        byte_offset = excluded.byte_offset, byte_length = excluded.byte_length
                    """)
                try await connection.execute(statement, logger: logger)
            }
            for chunk in batch.pods.chunks(of: 6000) {
                var statement = PostgresStatement(
                    """
                    INSERT INTO pods (snapshot_id, namespace, name, phase, node, restarts, labels, containers, orphan)
                    VALUES
                    """)
                let snapshot = try statement.bind(id.rawValue)
                var rows: [String] = []
                for pod in chunk {
                    let values = [
                        snapshot, try statement.bind(pod.record.namespace), try statement.bind(pod.record.name),
                        try statement.bind(pod.record.phase), try statement.bind(pod.record.node),
                        try statement.bind(pod.record.restarts),
                        try statement.bind(try IndexRows.encode(pod.labels))
                            + "::jsonb",
                        try statement.bind(try IndexRows.encode(pod.record.containers)),
                        try statement.bind(pod.isOrphan),
                    ]
                    rows.append("(" + values.joined(separator: ", ") + ")")
                }
                statement.append(rows.joined(separator: ", "))
                statement.append(
                    """
                     ON CONFLICT (snapshot_id, namespace, name) DO UPDATE SET phase = excluded.phase,
                        node = excluded.node, restarts = excluded.restarts, labels = excluded.labels,
                        containers = excluded.containers, orphan = excluded.orphan
                    """)
                try await connection.execute(statement, logger: logger)
            }
        }
    }

    package func namespaceSummaries(of id: SnapshotID) async throws -> [NamespaceSummary] {
        var summaries: [String: NamespaceSummary] = [:]
        var names = PostgresStatement()
        names.append("SELECT name FROM namespaces WHERE snapshot_id = \(try names.bind(id.rawValue))")
        for row in try await rows(names) {
            let name: String = try row.value("name")
            summaries[name] = NamespaceSummary(name: name)
        }
        var phases = PostgresStatement()
        phases.append(
            "SELECT namespace, phase, count(*) AS n FROM pods WHERE snapshot_id = \(try phases.bind(id.rawValue)) "
                + "GROUP BY namespace, phase")
        for row in try await rows(phases) {
            let namespace: String = try row.value("namespace")
            summaries[namespace, default: NamespaceSummary(name: namespace)].podsByPhase[try row.value("phase")] =
                Int(try row.value("n", as: Int64.self))
        }
        var kinds = PostgresStatement()
        kinds.append(
            "SELECT namespace, kind, count(*) AS n FROM resources WHERE snapshot_id = \(try kinds.bind(id.rawValue)) "
                + "AND namespace <> '' GROUP BY namespace, kind")
        for row in try await rows(kinds) {
            let namespace: String = try row.value("namespace")
            summaries[namespace, default: NamespaceSummary(name: namespace)].resourcesByKind[try row.value("kind")] =
                Int(try row.value("n", as: Int64.self))
        }
        return summaries.values.sorted { $0.name < $1.name }
    }

    private static let resourceColumns =
        "kind, namespace, name, api_version, uid, labels::text AS labels, created_at, owners, object_key, byte_offset, "
        + "byte_length"
    private static let podColumns = "namespace, name, phase, node, labels::text AS labels, containers, orphan"

    package func resources(of id: SnapshotID, _ query: ResourceQuery) async throws -> Page<IndexedResource> {
        var statement = PostgresStatement("SELECT \(Self.resourceColumns) FROM resources WHERE ")
        statement.append("snapshot_id = \(try statement.bind(id.rawValue))")
        if let namespace = query.namespace { statement.append(" AND namespace = \(try statement.bind(namespace))") }
        if let kind = query.kind { statement.append(" AND kind = \(try statement.bind(kind))") }
        if let prefix = query.namePrefix {
            statement.append(
                " AND left(name, \(try statement.bind(Int32(prefix.unicodeScalars.count)))) = \(try statement.bind(prefix))"
            )
        }
        if let selector = query.selector { try selector.appendPostgresConditions(column: "labels", to: &statement) }
        if let after = query.after, after.fields.count == 3 {
            statement.append(
                " AND (kind, namespace, name) > (\(try statement.bind(after.fields[0])), "
                    + "\(try statement.bind(after.fields[1])), \(try statement.bind(after.fields[2])))")
        }
        statement.append(" ORDER BY kind, namespace, name LIMIT \(try statement.bind(query.limit + 1))")
        let rows = try await rows(statement)
        return try Page(rows: rows, limit: query.limit, item: Self.decodeResource) { _, resource in
            IndexCursor([resource.record.kind, resource.record.namespace ?? "", resource.record.name]).token
        }
    }

    package func resource(
        of id: SnapshotID, kind: String, namespace: String?, name: String
    ) async throws -> IndexedResource? {
        var statement = PostgresStatement("SELECT \(Self.resourceColumns) FROM resources WHERE ")
        statement.append(
            "snapshot_id = \(try statement.bind(id.rawValue)) AND kind = \(try statement.bind(kind)) "
                + "AND namespace = \(try statement.bind(namespace ?? "")) AND name = \(try statement.bind(name))")
        return try await rows(statement).first.map(Self.decodeResource)
    }

    package func pods(of id: SnapshotID, _ query: PodQuery) async throws -> Page<IndexedPod> {
        var statement = PostgresStatement("SELECT \(Self.podColumns) FROM pods WHERE ")
        statement.append("snapshot_id = \(try statement.bind(id.rawValue))")
        if let namespace = query.namespace { statement.append(" AND namespace = \(try statement.bind(namespace))") }
        if let phase = query.phase { statement.append(" AND phase = \(try statement.bind(phase))") }
        if let node = query.node { statement.append(" AND node = \(try statement.bind(node))") }
        if let selector = query.selector { try selector.appendPostgresConditions(column: "labels", to: &statement) }
        if let after = query.after, after.fields.count == 2 {
            statement.append(
                " AND (namespace, name) > (\(try statement.bind(after.fields[0])), "
                    + "\(try statement.bind(after.fields[1])))")
        }
        statement.append(" ORDER BY namespace, name LIMIT \(try statement.bind(query.limit + 1))")
        let rows = try await rows(statement)
        return try Page(rows: rows, limit: query.limit, item: Self.decodePod) { _, pod in
            IndexCursor([pod.record.namespace, pod.record.name]).token
        }
    }

    package func podsWithMostRestarts(of id: SnapshotID, limit: Int) async throws -> [IndexedPod] {
        var statement = PostgresStatement("SELECT \(Self.podColumns) FROM pods WHERE ")
        statement.append(
            "snapshot_id = \(try statement.bind(id.rawValue)) AND restarts > 0 "
                + "ORDER BY restarts DESC, namespace, name LIMIT \(try statement.bind(limit))")
        return try await rows(statement).map(Self.decodePod)
    }

    package func listedPods(of id: SnapshotID, among pods: [PodKey]) async throws -> Set<PodKey> {
        var listed: Set<PodKey> = []
        for chunk in pods.chunks(of: 10_000) {
            var statement = PostgresStatement("SELECT namespace, name FROM pods WHERE ")
            statement.append("snapshot_id = \(try statement.bind(id.rawValue)) AND (namespace, name) IN (")
            for (index, pod) in chunk.enumerated() {
                statement.append(
                    (index == 0 ? "" : ", ") + "(\(try statement.bind(pod.namespace)), \(try statement.bind(pod.name)))"
                )
            }
            statement.append(")")
            for row in try await rows(statement) {
                listed.insert(PodKey(namespace: try row.value("namespace"), name: try row.value("name")))
            }
        }
        return listed
    }

    // MARK: Decoding

    private static func decodeResource(_ row: PostgresRandomAccessRow) throws -> IndexedResource {
        let namespace: String = try row.value("namespace")
        let record = ResourceRecord(
            kind: try row.value("kind"), apiVersion: try row.value("api_version"),
            namespace: namespace.isEmpty ? nil : namespace, name: try row.value("name"), uid: try row.value("uid"),
            labels: try IndexRows.decode([String: String].self, try row.value("labels")),
            createdAtMicros: try row.value("created_at"),
            owners: try IndexRows.decode([OwnerReference].self, try row.value("owners")))
        return IndexedResource(
            record: record,
            location: ManifestLocation(
                objectKey: try row.value("object_key"), offset: try row.value("byte_offset"),
                length: try row.value("byte_length")))
    }

    private static func decodePod(_ row: PostgresRandomAccessRow) throws -> IndexedPod {
        let record = PodRecord(
            namespace: try row.value("namespace"), name: try row.value("name"), phase: try row.value("phase"),
            node: try row.value("node"),
            containers: try IndexRows.decode([ContainerRecord].self, try row.value("containers")))
        return IndexedPod(
            record: record, labels: try IndexRows.decode([String: String].self, try row.value("labels")),
            isOrphan: try row.value("orphan"))
    }
}
