/// Why the configuration was refused: every bad key with what it allows. Printed before anything starts.
package struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One refused key.
    package struct Problem: Sendable, Equatable {
        /// The key at fault, or the flag for a malformed command line.
        package var key: String
        /// What was wrong and what is allowed.
        package var message: String
    }

    /// Every problem found, in `--help` order.
    package var problems: [Problem]

    package var description: String {
        "Invalid configuration:\n" + problems.map { "  - \($0.key): \($0.message)" }.joined(separator: "\n")
            + "\nRun with --help for every key, its environment variable and its default."
    }
}
