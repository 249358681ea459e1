import SQLiteNIO

/// A `WHERE` clause built from optional conditions, with its binds in order.
struct SQLFilter {
    private(set) var conditions: [String]
    private(set) var binds: [SQLiteData]

    /// Starts with one condition that always applies.
    init(_ condition: String, _ binds: [SQLiteData]) {
        self.conditions = [condition]
        self.binds = binds
    }

    /// Adds `condition` with one bind, when the bind is given.
    mutating func add(_ condition: String, _ bind: SQLiteData?) {
        guard let bind else { return }
        add(condition, [bind])
    }

    /// Adds `condition` with its binds.
    mutating func add(_ condition: String, _ binds: [SQLiteData]) {
        conditions.append(condition)
        self.binds += binds
    }

    /// The conditions joined by `AND`.
    var sql: String { conditions.joined(separator: " AND ") }
}

extension Array {
    /// The elements in consecutive slices of at most `size`.
    func chunks(of size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
