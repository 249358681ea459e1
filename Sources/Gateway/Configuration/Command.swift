import KubinModel

/// The tools `kubin-gateway` runs instead of serving: development tokens and API keys.
///
/// `kubin-gateway token [--tenant T] [--scopes S,S] [--ttl 24h] [--subject NAME] [settings...]`
/// `kubin-gateway keys create --tenant T --scopes S,S [--name NAME] [settings...]`
/// `kubin-gateway keys list [--tenant T] [settings...]`
/// `kubin-gateway keys revoke ID [settings...]`
///
/// Settings (`--data-dir`, `--metadata-url`, ...) are read as for serving, so a tool finds the store and key the
/// gateway uses.
package enum Command: Sendable, Equatable {
    /// Print a development token.
    case token(tenant: TenantID, scopes: Set<Scope>, validity: Duration, subject: String)
    /// Make an API key and print it once.
    case createKey(tenant: TenantID, scopes: Set<Scope>, name: String)
    /// List API keys (of one tenant, or all).
    case listKeys(tenant: TenantID?)
    /// Revoke an API key.
    case revokeKey(id: String)

    /// The usage text of the tools.
    static let usage = """
        kubin-gateway token [--tenant T] [--scopes snapshots:read,snapshots:write] [--ttl 24h] [--subject NAME]
            Prints a development token (development mode only: no identity provider configured).
        kubin-gateway keys create --tenant T --scopes snapshots:read[,snapshots:write] [--name NAME]
            Makes an API key; its text is printed once and only its hash is kept.
        kubin-gateway keys list [--tenant T]
        kubin-gateway keys revoke ID
            Revokes a key; every replica refuses it from its next request.
        Settings flags (--data-dir, --metadata-url, ...) work as when serving.
        """

    /// The command `arguments` (program name first) ask for, with the arguments left for the settings; nil when
    /// they ask for none (serve).
    static func parse(_ arguments: [String]) throws(ConfigurationError) -> (Command, settings: [String])? {
        let words = Array(arguments.dropFirst())
        guard let verb = words.first, verb == "token" || verb == "keys" else { return nil }
        var tail = Array(words.dropFirst())
        let action: String
        if verb == "keys" {
            guard let first = tail.first, ["create", "list", "revoke"].contains(first) else {
                throw problem("keys", "needs one of: create, list, revoke\n\(usage)")
            }
            action = first
            tail.removeFirst()
        } else {
            action = "token"
        }
        var own: [String: String] = [:]
        var positional: [String] = []
        var rest: [String] = []
        let ownFlags: Set<String> =
            switch action {
            case "token": ["--tenant", "--scopes", "--ttl", "--subject"]
            case "create": ["--tenant", "--scopes", "--name"]
            case "list": ["--tenant"]
            default: []
            }
        var index = 0
        while index < tail.count {
            let word = tail[index]
            let (flag, inline) = split(word)
            if ownFlags.contains(flag) {
                if let inline {
                    own[flag] = inline
                } else {
                    guard index + 1 < tail.count else { throw problem(flag, "needs a value") }
                    own[flag] = tail[index + 1]
                    index += 1
                }
            } else if word.hasPrefix("--") {
                rest.append(word)
                if inline == nil, index + 1 < tail.count, !tail[index + 1].hasPrefix("--") {
                    rest.append(tail[index + 1])
                    index += 1
                }
            } else {
                positional.append(word)
            }
            index += 1
        }
        let expectedPositional = action == "revoke" ? 1 : 0
        guard positional.count == expectedPositional else {
            throw problem(
                positional.first ?? action,
                expectedPositional == 1 ? "keys revoke needs exactly one key id" : "unexpected argument\n\(usage)")
        }
        let settings = [arguments.first ?? "kubin-gateway"] + rest
        switch action {
        case "token":
            return (
                .token(
                    tenant: try tenant(own["--tenant"]) ?? .legacy,
                    scopes: try scopes(own["--scopes"]) ?? Set(Scope.allCases),
                    validity: try validity(own["--ttl"]), subject: own["--subject"] ?? "developer"), settings
            )
        case "create":
            guard let tenant = try tenant(own["--tenant"]) else { throw problem("--tenant", "is required") }
            guard let scopes = try scopes(own["--scopes"]) else { throw problem("--scopes", "is required") }
            return (.createKey(tenant: tenant, scopes: scopes, name: own["--name"] ?? ""), settings)
        case "list":
            return (.listKeys(tenant: try tenant(own["--tenant"])), settings)
        default:
            return (.revokeKey(id: positional[0]), settings)
        }
    }

    private static func split(_ word: String) -> (flag: String, inline: String?) {
        guard word.hasPrefix("--"), let equals = word.firstIndex(of: "=") else { return (word, nil) }
        return (String(word[..<equals]), String(word[word.index(after: equals)...]))
    }

    private static func tenant(_ text: String?) throws(ConfigurationError) -> TenantID? {
        guard let text else { return nil }
        guard let tenant = TenantID(validating: text) else { throw problem("--tenant", TenantID.rule) }
        return tenant
    }

    private static func scopes(_ text: String?) throws(ConfigurationError) -> Set<Scope>? {
        guard let text else { return nil }
        let names = text.split(whereSeparator: { $0 == "," || $0 == " " })
        let scopes = Scope.parse(names)
        guard !names.isEmpty, scopes.count == Set(names).count else {
            throw problem(
                "--scopes", "takes a comma-separated list of: " + Scope.allCases.map(\.rawValue).joined(separator: ", ")
            )
        }
        return scopes
    }

    private static func validity(_ text: String?) throws(ConfigurationError) -> Duration {
        guard let text else { return .seconds(86400) }
        guard let duration = SettingValues.duration(text), duration >= .seconds(60),
            duration <= .seconds(366 * 86400)
        else { throw problem("--ttl", "takes a duration from 1m to 366 days, such as 30m, 12h or 720h") }
        return duration
    }

    private static func problem(_ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(problems: [.init(key: key, message: message)])
    }
}
