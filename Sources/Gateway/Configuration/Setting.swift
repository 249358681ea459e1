import Clients
import KubinModel
import KubinSupport

/// One configuration key: its name, default, meaning, the values it takes and how a value may be shown.
///
/// The rows of ``SettingsTable`` are the only place a key is described: the configuration's values, `--help`,
/// validation and the printed configuration all come from them.
package struct Setting<Value: Sendable>: SettingRow {
    package let key: String
    /// The default as an operator would write it; empty when the key is unset by default.
    package let defaultValue: String
    package let summary: String
    package let exposure: SettingExposure
    /// The values the key takes, as a refusal and `--help` say them.
    package let expected: String
    /// The value of a text, nil when the key does not take it (for an optional value, `.some(nil)` is "unset").
    private let parse: @Sendable (String) -> Value?

    init(
        _ key: String, _ defaultValue: String, expected: String, exposure: SettingExposure = .plain,
        _ summary: String, parse: @escaping @Sendable (String) -> Value?
    ) {
        self.key = key
        self.defaultValue = defaultValue
        self.expected = expected
        self.exposure = exposure
        self.summary = summary
        self.parse = parse
    }

    /// The value of `text`, or nil when the key does not take it.
    package func value(of text: String) -> Value? { parse(text) }

    package func accepts(_ text: String) -> Bool { value(of: text) != nil }
}

/// How a value may be shown in help, logs and error messages.
package enum SettingExposure: Sendable, Hashable {
    /// Shown as it is.
    case plain
    /// A URL whose user-info password is replaced by `<redacted>`.
    case url
    /// Never shown.
    case secret
}

/// A row of ``SettingsTable`` whatever its value's type: what help, validation and printing need.
package protocol SettingRow: Sendable {
    /// The dotted key, for example `uploads.maxConcurrent`.
    var key: String { get }
    var defaultValue: String { get }
    /// What the key does.
    var summary: String { get }
    var exposure: SettingExposure { get }
    var expected: String { get }
    /// True when the key takes `text`.
    func accepts(_ text: String) -> Bool
}

extension SettingRow {
    /// The environment variable that sets the key: `KUBIN_` + the key's words in upper snake case.
    package var environmentVariable: String {
        "KUBIN_" + words.map { $0.uppercased() }.joined(separator: "_")
    }

    /// The command-line flag that sets the key: `--` + the key's words in lower kebab case.
    package var flag: String { "--" + words.map { $0.lowercased() }.joined(separator: "-") }

    /// The key split into words: at dots and where a lowercase letter meets an uppercase one, as swift-configuration's
    /// environment and command-line providers encode keys.
    private var words: [String] {
        key.split(separator: ".").flatMap { component -> [String] in
            var words: [String] = []
            var current = ""
            var previousIsLower = false
            for character in component {
                if character.isUppercase, previousIsLower {
                    words.append(current)
                    current = ""
                }
                current.append(character)
                previousIsLower = character.isLowercase
            }
            words.append(current)
            return words
        }
    }

    /// `value` as it may be printed.
    package func display(_ value: String) -> String {
        switch exposure {
        case .plain: value
        case .secret: value.isEmpty ? "" : "<redacted>"
        case .url: SettingValues.redactingPassword(in: value)
        }
    }
}

// MARK: Kinds of value

extension Setting where Value: Comparable {
    /// A value `parse` reads that must lie in `range`; `kind`, `format` (of the bounds) and `examples` say what it
    /// is in a refusal.
    static func bounded(
        _ key: String, _ defaultValue: String, in range: ClosedRange<Value>, kind: String,
        format: (Value) -> String = { "\($0)" }, examples: String = "", _ summary: String,
        parse: @escaping @Sendable (String) -> Value?
    ) -> Self {
        Self(
            key, defaultValue,
            expected: "\(kind) from \(format(range.lowerBound)) to \(format(range.upperBound))\(examples)", summary
        ) { text in parse(text).flatMap { range.contains($0) ? $0 : nil } }
    }
}

extension Setting where Value == Int {
    static func integer(_ key: String, _ defaultValue: String, in range: ClosedRange<Int>, _ summary: String) -> Self {
        .bounded(key, defaultValue, in: range, kind: "a whole number", summary, parse: SettingValues.integer)
    }
}

extension Setting where Value == Int64 {
    static func bytes(_ key: String, _ defaultValue: String, in range: ClosedRange<Int64>, _ summary: String) -> Self {
        .bounded(
            key, defaultValue, in: range, kind: "a size", format: SettingValues.text(ofBytes:),
            examples: ", such as 512KiB, 64MiB or 4GiB", summary, parse: SettingValues.bytes)
    }
}

extension Setting where Value == Duration {
    static func duration(
        _ key: String, _ defaultValue: String, in range: ClosedRange<Duration>, _ summary: String
    ) -> Self {
        .bounded(
            key, defaultValue, in: range, kind: "a duration", format: SettingValues.text(of:),
            examples: ", such as 500ms, 30s or 2m", summary, parse: SettingValues.duration)
    }
}

extension Setting where Value == String {
    /// Any text that is not blank.
    static func text(_ key: String, _ defaultValue: String, _ summary: String) -> Self {
        Self(key, defaultValue, expected: "a non-empty value", summary) { text in
            text.allSatisfy(\.isWhitespace) ? nil : text
        }
    }

    /// An IPv4 or IPv6 address or a host name.
    static func host(_ key: String, _ defaultValue: String, _ summary: String) -> Self {
        Self(key, defaultValue, expected: "an IPv4 or IPv6 address or a host name", summary) { text in
            SettingValues.isHost(text) ? text : nil
        }
    }
}

extension Setting where Value == String? {
    /// Any text; empty (the default) is nil.
    static func optionalText(_ key: String, exposure: SettingExposure = .plain, _ summary: String) -> Self {
        Self(key, "", expected: "any text", exposure: exposure, summary) { text in .some(text.isEmpty ? nil : text) }
    }
}

extension Setting {
    /// One of the names of `choices`, in any case.
    static func choice(_ key: String, _ defaultValue: String, _ choices: [String: Value], _ summary: String) -> Self {
        Self(key, defaultValue, expected: "one of " + choices.keys.sorted().joined(separator: ", "), summary) { text in
            choices[text.lowercased()]
        }
    }

    /// A URL naming a backend: empty (the default) is nil, the embedded one; otherwise `backend` must accept it.
    static func backend<Backend>(
        _ key: String, allowed: String, _ summary: String, _ backend: @escaping @Sendable (URLSetting) -> Backend?
    ) -> Self where Value == Backend? {
        Self(key, "", expected: allowed, exposure: .url, summary) { text in
            if text.isEmpty { return .some(nil) }
            return URLSetting(text).flatMap(backend).map(Optional.some)
        }
    }
}

extension Setting where Value == Set<Scope> {
    /// A comma-separated list of scopes.
    static func scopes(_ key: String, _ defaultValue: String, _ summary: String) -> Self {
        Self(key, defaultValue, expected: "a comma-separated list of " + Scope.names, summary, parse: Scope.list)
    }
}

extension Setting where Value == Set<String> {
    /// A comma-separated list of browser origins, or `*`.
    static func origins(_ key: String, _ summary: String) -> Self {
        Self(
            key, "",
            expected: "a comma-separated list of origins such as https://ui.example.com or http://localhost:3000 "
                + "(scheme, host and port only), or *", summary, parse: SettingValues.origins)
    }
}

extension Setting where Value == GCRA? {
    /// A rate, `<requests>/<duration>` such as `1000/1m`, or `off` (nil).
    static func rate(_ key: String, _ defaultValue: String, _ summary: String) -> Self {
        Self(
            key, defaultValue, expected: "<requests>/<duration> such as 1000/1m or 20/1s (1s to 24h), or off", summary,
            parse: SettingValues.rate)
    }
}

extension Setting where Value == Bool {
    static func flag(_ key: String, _ defaultValue: String, _ summary: String) -> Self {
        .choice(key, defaultValue, ["false": false, "true": true], summary)
    }
}

/// A URL setting's text split at its scheme: `postgres://u:p@db/k` has scheme `postgres` and rest `u:p@db/k`.
struct URLSetting: Sendable {
    /// The scheme, lowercased.
    var scheme: String
    /// What follows `scheme:` (and `//`, if any).
    var rest: String
    /// The whole text.
    var text: String

    init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        var rest = text[text.index(after: colon)...]
        if rest.hasPrefix("//") { rest = rest.dropFirst(2) }
        self.scheme = text[..<colon].lowercased()
        self.rest = String(rest)
        self.text = text
    }

    /// The store this URL names: `<localScheme>:<path>` is `local(path)`; a URL of `sharedSchemes` is what `shared`
    /// makes of the whole text (nil when it refuses it); anything else is nil.
    func store<Backend>(
        local localScheme: String, _ local: (String) -> Backend, shared sharedSchemes: Set<String>,
        _ shared: (String) -> Backend?
    ) -> Backend? {
        if scheme == localScheme { return rest.isEmpty ? nil : local(rest) }
        return sharedSchemes.contains(scheme) ? shared(text) : nil
    }
}
