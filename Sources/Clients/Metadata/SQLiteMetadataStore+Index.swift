import Foundation
import KubinModel
import SQLiteNIO

extension SQLiteMetadataStore {
    private static let resourceColumns =
        "kind, namespace, name, api_version, uid, labels, created_at, owners, object_key, byte_offset, byte_length"
    private static let podColumns = "namespace, name, phase, node, labels, containers, orphan"

    package func insertIndex(_ batch: IndexBatch, of id: SnapshotID) async throws {
        guard !batch.isEmpty else { return }
        let snapshot = SQLiteData.text(id.rawValue)
        try await database.transaction { transaction in
            try await Self.insert(
                into: "namespaces (snapshot_id, name)", columns: 2, rows: batch.namespaces, in: transaction
            ) { [snapshot, .text($0)] }
            try await Self.insert(
                into: "resources (snapshot_id, \(Self.resourceColumns))", columns: 12, rows: batch.resources,
                in: transaction
            ) { resource in
                let record = resource.record
                return [
                    snapshot, .text(record.kind), .text(record.namespace ?? ""), .text(record.name),
                    .text(record.apiVersion), record.uid.map(SQLiteData.text) ?? .null,
                    .text(try IndexRows.encode(record.labels)),
                    record.createdAtMicros.map { .integer(Int($0)) } ?? .null,
                    .text(try IndexRows.encode(record.owners)), .text(resource.location.objectKey),
                    .integer(Int(resource.location.offset)), .integer(Int(resource.location.length)),
                ]
            }
            try await Self.insert(
                into: "pods (snapshot_id, \(Self.podColumns), restarts)", columns: 9, rows: batch.pods, in: transaction
            ) { pod in
                [
                    snapshot, .text(pod.record.namespace), .text(pod.record.name), .text(pod.record.phase),
                    pod.record.node.map(SQLiteData.text) ?? .null, .text(try IndexRows.encode(pod.labels)),
                    .text(try IndexRows.encode(pod.record.containers)), .integer(pod.isOrphan ? 1 : 0),
                    .integer(pod.record.restarts),
                ]
            }
        }
    }

    package func namespaceSummaries(of id: SnapshotID) async throws -> [NamespaceSummary] {
        let binds: [SQLiteData] = [.text(id.rawValue)]
        var summaries: [String: NamespaceSummary] = [:]
        for row in try await database.query("SELECT name FROM namespaces WHERE snapshot_id = ?", binds) {
            guard let name = row.column("name")?.string else { continue }
            summaries[name] = NamespaceSummary(name: name)
        }
        for row in try await database.query(
            "SELECT namespace, phase, count(*) AS n FROM pods WHERE snapshot_id = ? GROUP BY namespace, phase", binds)
        {
            guard let namespace = row.column("namespace")?.string, let phase = row.column("phase")?.string else {
                continue
            }
            summaries[namespace, default: NamespaceSummary(name: namespace)].podsByPhase[phase] =
                row.column("n")?.integer ?? 0
        }
        for row in try await database.query(
            """
            SELECT namespace, kind, count(*) AS n FROM resources WHERE snapshot_id = ? AND namespace != ''
            GROUP BY namespace, kind
            """, binds)
        {
            guard let namespace = row.column("namespace")?.string, let kind = row.column("kind")?.string else {
                continue
            }
            summaries[namespace, default: NamespaceSummary(name: namespace)].resourcesByKind[kind] =
                row.column("n")?.integer ?? 0
        }
        return summaries.values.sorted { $0.name < $1.name }
    }

    package func resources(of id: SnapshotID, _ query: ResourceQuery) async throws -> Page<IndexedResource> {
        var filter = SQLFilter("snapshot_id = ?", [.text(id.rawValue)])
        filter.add("namespace = ?", query.namespace.map(SQLiteData.text))
        filter.add("kind = ?", query.kind.map(SQLiteData.text))
        if let prefix = query.namePrefix {
            filter.add("substr(name, 1, ?) = ?", [.integer(prefix.unicodeScalars.count), .text(prefix)])
        }
        for condition in query.selector?.sqliteConditions(column: "labels") ?? [] {
            filter.add(condition.sql, condition.binds)
        }
        if let after = query.after {
            filter.add("(kind, namespace, name) > (?, ?, ?)", after.fields.map(SQLiteData.text))
        }
        let rows = try await database.query(
            "SELECT \(Self.resourceColumns) FROM resources WHERE \(filter.sql) ORDER BY kind, namespace, name LIMIT ?",
            filter.binds + [.integer(query.limit + 1)])
        return try Page(rows: rows, limit: query.limit, item: Self.decodeResource) { _, resource in
            IndexCursor([resource.record.kind, resource.record.namespace ?? "", resource.record.name]).token
        }
    }

    package func resource(
        of id: SnapshotID, kind: String, namespace: String?, name: String
    ) async throws -> IndexedResource? {
        try await database.query(
            """
            SELECT \(Self.resourceColumns) FROM resources
            WHERE snapshot_id = ? AND kind = ? AND namespace = ? AND name = ?
            """, [.text(id.rawValue), .text(kind), .text(namespace ?? ""), .text(name)]
        ).first.map(Self.decodeResource)
    }

    package func pods(of id: SnapshotID, _ query: PodQuery) async throws -> Page<IndexedPod> {
        var filter = SQLFilter("snapshot_id = ?", [.text(id.rawValue)])
        filter.add("namespace = ?", query.namespace.map(SQLiteData.text))
        filter.add("phase = ?", query.phase.map(SQLiteData.text))
        filter.add("node = ?", query.node.map(SQLiteData.text))
        for condition in query.selector?.sqliteConditions(column: "labels") ?? [] {
            filter.add(condition.sql, condition.binds)
        }
        if let after = query.after {
            filter.add("(namespace, name) > (?, ?)", after.fields.map(SQLiteData.text))
        }
        let rows = try await database.query(
            "SELECT \(Self.podColumns) FROM pods WHERE \(filter.sql) ORDER BY namespace, name LIMIT ?",
            filter.binds + [.integer(query.limit + 1)])
        return try Page(rows: rows, limit: query.limit, item: Self.decodePod) { _, pod in
            IndexCursor([pod.record.namespace, pod.record.name]).token
        }
    }

    package func podsWithMostRestarts(of id: SnapshotID, limit: Int) async throws -> [IndexedPod] {
        try await database.query(
            """
            SELECT \(Self.podColumns) FROM pods WHERE snapshot_id = ? AND restarts > 0
            ORDER BY restarts DESC, namespace, name LIMIT ?
            """, [.text(id.rawValue), .integer(limit)]
        ).map(Self.decodePod)
    }

    package func listedPods(of id: SnapshotID, among pods: [PodKey]) async throws -> Set<PodKey> {
        var listed: Set<PodKey> = []
        for chunk in pods.chunks(of: 10_000) {
            let rows = try await database.query(
                """
                SELECT namespace, name FROM pods
                WHERE snapshot_id = ? AND (namespace, name) IN (VALUES \(SQLiteDatabase.placeholders(rows: chunk.count, columns: 2)))
                """, [.text(id.rawValue)] + chunk.flatMap { [SQLiteData.text($0.namespace), .text($0.name)] })
            for row in rows {
                if let namespace = row.column("namespace")?.string, let name = row.column("name")?.string {
                    listed.insert(PodKey(namespace: namespace, name: name))
                }
            }
        }
        return listed
    }

    // MARK: Helpers

    /// Inserts (or replaces) `rows` in multi-row statements within SQLite's bound on parameters.
    private static func insert<Row>(
        into table: String, columns: Int, rows: [Row], in transaction: SQLiteDatabase.Transaction,
        binds: (Row) throws -> [SQLiteData]
    ) async throws {
        for chunk in rows.chunks(of: 30_000 / columns) {
            var values: [SQLiteData] = []
            values.reserveCapacity(chunk.count * columns)
            for row in chunk { values += try binds(row) }
            let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
            _ = try await transaction.query(
                "INSERT OR REPLACE INTO \(table) VALUES "
                    + Array(repeating: row, count: chunk.count).joined(separator: ", "), values)
        }
    }

    private static func decodeResource(_ row: SQLiteRow) throws -> IndexedResource {
        guard let kind = row.column("kind")?.string, let namespace = row.column("namespace")?.string,
            let name = row.column("name")?.string, let apiVersion = row.column("api_version")?.string,
            let key = row.column("object_key")?.string, let offset = row.column("byte_offset")?.integer,
            let length = row.column("byte_length")?.integer
        else { throw MetadataStoreError.corruptRow("resources row is unreadable") }
        let record = ResourceRecord(
            kind: kind, apiVersion: apiVersion, namespace: namespace.isEmpty ? nil : namespace, name: name,
            uid: row.column("uid")?.string,
            labels: try IndexRows.decode([String: String].self, row.column("labels")?.string),
            createdAtMicros: row.column("created_at")?.integer.map(Int64.init),
            owners: try IndexRows.decode([OwnerReference].self, row.column("owners")?.string))
        return IndexedResource(
            record: record, location: ManifestLocation(objectKey: key, offset: Int64(offset), length: Int64(length)))
    }

    private static func decodePod(_ row: SQLiteRow) throws -> IndexedPod {
        guard let namespace = row.column("namespace")?.string, let name = row.column("name")?.string,
            let phase = row.column("phase")?.string, let orphan = row.column("orphan")?.integer
        else { throw MetadataStoreError.corruptRow("pods row is unreadable") }
        let record = PodRecord(
            namespace: namespace, name: name, phase: phase, node: row.column("node")?.string,
            containers: try IndexRows.decode([ContainerRecord].self, row.column("containers")?.string))
        return IndexedPod(
            record: record, labels: try IndexRows.decode([String: String].self, row.column("labels")?.string),
            isOrphan: orphan != 0)
    }
}
