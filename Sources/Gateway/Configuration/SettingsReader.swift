/// Reads typed values out of texts (key → text; a missing key takes its default) by the rows of ``SettingsTable``,
/// recording a problem for every text a row refuses and for every key no row has.
struct SettingsReader {
    private let raw: [String: String]
    private var found: [ConfigurationError.Problem] = []

    init(raw: [String: String]) {
        self.raw = raw
        let known = Set(SettingsTable.rows.map(\.key))
        for key in raw.keys.sorted() where !known.contains(key) {
            found.append(.init(key: key, message: "is not a setting; run with --help for every key"))
        }
    }

    /// The problems found so far, in `--help` order (unknown keys first).
    var problems: [ConfigurationError.Problem] {
        let order = Dictionary(uniqueKeysWithValues: SettingsTable.rows.enumerated().map { ($1.key, $0) })
        return found.enumerated().sorted { left, right in
            (order[left.element.key] ?? -1, left.offset) < (order[right.element.key] ?? -1, right.offset)
        }.map(\.element)
    }

    /// The value of `row`'s text; when the row refuses it, a problem is recorded and the default's value returned.
    mutating func callAsFunction<Value>(_ row: KeyPath<SettingsTable, Setting<Value>>) -> Value {
        let setting = SettingsTable.shared[keyPath: row]
        if let value = setting.value(of: text(of: setting)) { return value }
        refuse(setting, expected: setting.expected)
        guard let fallback = setting.value(of: setting.defaultValue) else {
            preconditionFailure("the default of \(setting.key) is not one of its own values")
        }
        return fallback
    }

    /// Records a problem with `row`'s text that a rule involving other keys found.
    mutating func refuse<Value>(_ row: KeyPath<SettingsTable, Setting<Value>>, expected: String) {
        refuse(SettingsTable.shared[keyPath: row], expected: expected)
    }

    private mutating func refuse(_ setting: any SettingRow, expected: String) {
        found.append(
            .init(
                key: setting.key,
                message: "'\(setting.display(text(of: setting)))' is not allowed; expected \(expected) "
                    + "(set by \(setting.environmentVariable) or \(setting.flag); default '\(setting.defaultValue)')"))
    }

    private func text(of setting: any SettingRow) -> String { raw[setting.key] ?? setting.defaultValue }
}
