import Foundation
import Gateway
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
            try await gateway.run { port in
                logger.info("listening", metadata: ["host": "\(configuration.http.host)", "port": "\(port)"])
            }
        }
    } catch {
        logger.critical("gateway failed", metadata: ["error": "\(String(reflecting: error))"])
        exit(1)
    }
}
