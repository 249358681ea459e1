import Foundation
import Gateway
import KubinModel
import Logging

// Read and validate the configuration, then build and run the gateway; nothing starts on a bad configuration.
let invocation: GatewayConfiguration.Invocation
do {
    invocation = try await GatewayConfiguration.load(
        arguments: CommandLine.arguments, environment: ProcessInfo.processInfo.environment)
} catch {
    FileHandle.standardError.write(Data((error.description + "\n").utf8))
    exit(2)
}

switch invocation {
case .help:
    print(GatewayConfiguration.helpText)
case .command(let command, let configuration):
    // What a tool prints goes to standard output; its log lines (the audit of key changes) to standard error.
    LoggingSystem.bootstrap { label in
        JSONLogHandler(label: label, level: configuration.logLevel) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }
    do {
        print(try await Gateway.run(command, configuration: configuration, logger: Logger(label: "kubin-gateway")))
    } catch {
        FileHandle.standardError.write(Data("kubin-gateway: \(error)\n".utf8))
        exit(1)
    }
case .run(let configuration):
    LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: configuration.logLevel) }
    let logger = Logger(label: "kubin-gateway")
    logger.info(
        "configuration",
        metadata: [
            "settings": .dictionary(
                .init(
                    uniqueKeysWithValues: configuration.printableSettings.map {
                        ($0.key, .string($0.value))
                    }))
        ])
    do {
        try await Gateway.with(configuration: configuration, logger: logger) { gateway in
            let banner = try await developmentBanner(gateway)
            try await gateway.run { port in
                logger.info("listening", metadata: ["host": "\(configuration.http.host)", "port": "\(port)"])
                if let banner { FileHandle.standardError.write(Data(banner(port).utf8)) }
            }
        }
    } catch {
        logger.critical("gateway failed", metadata: ["error": "\(String(reflecting: error))"])
        exit(1)
    }
}

/// In development mode: logs it, makes a development token, and returns the lines that show it for the bound port.
func developmentBanner(_ gateway: Gateway) async throws -> (@Sendable (Int) -> String)? {
    guard let signer = gateway.access.developmentSigner else { return nil }
    let configuration = gateway.configuration
    let token = try await signer.token(
        subject: "developer", tenant: .legacy, scopes: Set(Scope.allCases), validity: .seconds(86400))
    Logger(label: "kubin-gateway").notice(
        "development mode: no identity provider is configured",
        metadata: ["trusted_key": "\(configuration.dataDirectory)/\(DevelopmentSigner.fileName)"])
    return { port in
        """
        Development token (tenant 'default', scopes snapshots:read snapshots:write, valid 24 hours; \
        'kubin-gateway token' prints another):
            export KUBIN_TOKEN=\(token)
            curl -H "Authorization: Bearer $KUBIN_TOKEN" http://\(configuration.http.host):\(port)/api/v1/snapshots

        """
    }
}
