import KubinModel
import PostgresNIO
import SQLiteNIO

extension LabelSelector {
    /// The selector as SQLite conditions on a JSON object column `column` (label keys are validated by the parser, so
    /// they cannot break out of the quoted JSON path; they are bound as parameters all the same).
    func sqliteConditions(column: String) -> [(sql: String, binds: [SQLiteData])] {
        requirements.map { requirement in
            let path = SQLiteData.text("$.\"\(requirement.key)\"")
            let value = "json_extract(\(column), ?)"
            switch requirement {
            case .exists: return ("json_type(\(column), ?) IS NOT NULL", [path])
            case .doesNotExist: return ("json_type(\(column), ?) IS NULL", [path])
            case .equals(_, let expected): return ("\(value) = ?", [path, .text(expected)])
            // A missing label compares as NULL; Kubernetes counts it as "not equal" and "not in".
            case .notEquals(_, let excluded): return ("coalesce(\(value) != ?, 1)", [path, .text(excluded)])
            case .isIn(_, let values):
                return ("\(value) IN (\(Self.marks(values.count)))", [path] + values.map(SQLiteData.text))
            case .notIn(_, let values):
                return (
                    "coalesce(\(value) NOT IN (\(Self.marks(values.count))), 1)", [path] + values.map(SQLiteData.text)
                )
            }
        }
    }

    private static func marks(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ", ") }
}

extension LabelSelector {
    /// Appends the selector as PostgreSQL conditions (`AND ...`) on the JSONB column `column`; keys and values are
    /// bound parameters.
    func appendPostgresConditions(column: String, to statement: inout PostgresStatement) throws {
        for requirement in requirements {
            let key = try statement.bind(requirement.key)
            let value = "(\(column) ->> \(key))"
            switch requirement {
            case .exists: statement.append(" AND \(column) ? \(key)")
            case .doesNotExist: statement.append(" AND NOT \(column) ? \(key)")
            case .equals(_, let expected): statement.append(" AND \(value) = \(try statement.bind(expected))")
            // A missing label is NULL; Kubernetes counts it as "not equal" and "not in".
            case .notEquals(_, let excluded):
                statement.append(" AND \(value) IS DISTINCT FROM \(try statement.bind(excluded))")
            case .isIn(_, let values): statement.append(" AND \(value) = ANY(\(try statement.bind(values)))")
            case .notIn(_, let values):
                statement.append(" AND NOT coalesce(\(value) = ANY(\(try statement.bind(values))), false)")
            }
        }
    }
}
