import Configuration
import SystemPackage

extension GatewayConfiguration {
    /// What the command line asks for.
    package enum Invocation: Sendable {
        /// Run the gateway with this configuration.
        case run(GatewayConfiguration)
        /// Print ``helpText`` and exit.
        case help
        /// Run a tool (tokens, API keys) with this configuration.
        case command(Command, GatewayConfiguration)
    }

    /// Reads the configuration from `arguments` (program name first), `environment` and the file they name.
    /// Throws ``ConfigurationError`` naming every bad key, flag or file.
    package static func load(
        arguments: [String], environment: [String: String]
    ) async throws(ConfigurationError)
        -> Invocation
    {
        if arguments.dropFirst().contains(where: { $0 == "--help" || $0 == "-h" }) { return .help }
        if let (command, settings) = try Command.parse(arguments) {
            return .command(command, try await configuration(arguments: settings, environment: environment))
        }
        return .run(try await configuration(arguments: arguments, environment: environment))
    }

    /// The configuration of `arguments` (settings flags only) and `environment`.
    private static func configuration(
        arguments: [String], environment: [String: String]
    ) async throws(ConfigurationError) -> GatewayConfiguration {
        try checkFlags(Array(arguments.dropFirst()))
        var providers: [any ConfigProvider] = [
            CommandLineArgumentsProvider(arguments: arguments),
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "kubin"),
        ]
        let early = ConfigReader(providers: providers)
        if let path = try await rawValue(of: SettingsTable.shared.configFile, in: early), !path.isEmpty {
            providers.append(try await fileProvider(path: path))
        }
        let reader = ConfigReader(providers: providers)
        var raw: [String: String] = [:]
        var problems: [ConfigurationError.Problem] = []
        for setting in SettingsTable.rows {
            do throws(ConfigurationError) {
                raw[setting.key] = try await rawValue(of: setting, in: reader)
            } catch {
                problems += error.problems
            }
        }
        if !problems.isEmpty { throw ConfigurationError(problems: problems) }
        return try GatewayConfiguration(raw: raw, environment: environment)
    }

    /// Every key with its environment variable, flag, default and meaning.
    package static var helpText: String {
        var lines = [
            "kubin-gateway: the Kubin platform's HTTP gateway.", "",
            "Usage: kubin-gateway [--<key-in-kebab-case> <value>]...", "", "Tools:", Command.usage, "",
            "Each setting comes from, highest precedence first: the command line, a KUBIN_* environment variable,",
            "the file named by --config-file, the default below.", "",
        ]
        for setting in SettingsTable.rows {
            lines.append("  \(setting.flag) <value>   (\(setting.environmentVariable); file key \(setting.key))")
            lines.append("      \(setting.summary)")
            lines.append("      takes: \(setting.expected)")
            lines.append(
                "      default: \(setting.defaultValue.isEmpty ? "(empty)" : setting.display(setting.defaultValue))")
        }
        return lines.joined(separator: "\n")
    }

    /// Refuses positional arguments and unknown flags: a typo must not silently fall back to a default.
    private static func checkFlags(_ arguments: [String]) throws(ConfigurationError) {
        let known = Set(SettingsTable.rows.map(\.flag))
        var problems: [ConfigurationError.Problem] = []
        var expectsValue = false
        for argument in arguments {
            if argument.hasPrefix("--") {
                let flag = String(argument.split(separator: "=", maxSplits: 1)[0])
                if !known.contains(flag) {
                    problems.append(.init(key: flag, message: "unknown flag; run with --help for every flag"))
                }
                expectsValue = !argument.contains("=")
            } else if expectsValue {
                expectsValue = false
            } else {
                problems.append(.init(key: argument, message: "unexpected argument; settings are --<flag> <value>"))
            }
        }
        if !problems.isEmpty { throw ConfigurationError(problems: problems) }
    }

    /// The key's value as text from the first provider that has it, whatever its native type (a JSON number, say).
    private static func rawValue(
        of setting: any SettingRow, in reader: ConfigReader
    ) async throws(ConfigurationError)
        -> String?
    {
        let key = ConfigKey(setting.key)
        let isSecret = setting.exposure != .plain
        do {
            return try await reader.fetchString(forKey: key, isSecret: isSecret)
        } catch {
            if let number = try? await reader.fetchInt(forKey: key, isSecret: isSecret) { return String(number) }
            if let number = try? await reader.fetchDouble(forKey: key, isSecret: isSecret) { return String(number) }
            if let flag = try? await reader.fetchBool(forKey: key, isSecret: isSecret) { return String(flag) }
            // Environment variables with commas, and YAML/JSON lists, arrive as arrays: lists of origins or scopes.
            if let list = try? await reader.fetchStringArray(forKey: key, isSecret: isSecret) {
                return list.joined(separator: ",")
            }
            throw ConfigurationError(problems: [
                .init(
                    key: setting.key,
                    message: "has a value that cannot be read (\(setting.environmentVariable), \(setting.flag) or the "
                        + "config file); an object is not allowed here")
            ])
        }
    }

    private static func fileProvider(path: String) async throws(ConfigurationError) -> any ConfigProvider {
        do {
            if path.hasSuffix(".json") {
                return try await FileProvider<JSONSnapshot>(filePath: FilePath(path))
            }
            if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
                return try await FileProvider<YAMLSnapshot>(filePath: FilePath(path))
            }
        } catch {
            throw ConfigurationError(problems: [
                .init(key: "config.file", message: "cannot read '\(path)': \(error)")
            ])
        }
        throw ConfigurationError(problems: [
            .init(key: "config.file", message: "'\(path)' must end in .json, .yaml or .yml")
        ])
    }
}
