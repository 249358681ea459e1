/// Which container log a line belongs to.
package struct LogStreamKey: Sendable, Hashable {
    /// The pod's namespace.
    package var namespace: String
    package var pod: String
    package var container: String
    /// True for the log of the container's previous run.
    package var isPrevious: Bool

    package init(namespace: String, pod: String, container: String, isPrevious: Bool) {
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.isPrevious = isPrevious
    }
}

/// One log line as the index stores it.
package struct LogLine: Sendable, Equatable {
    /// 1-based, counted per container log after CRI partial lines are joined.
    package var number: Int
    /// The line's text as it appeared (a joined CRI line: the first part's prefix and every part's message).
    package var text: String
    /// The recognised timestamp, in microseconds since 1970, or nil.
    package var timestampMicros: Int64?

    package init(number: Int, text: String, timestampMicros: Int64?) {
        self.number = number
        self.text = text
        self.timestampMicros = timestampMicros
    }
}

/// Consecutive lines of one container log: the unit analytics appends.
package struct LogBatch: Sendable, Equatable {
    /// The container log.
    package var stream: LogStreamKey
    /// Its next lines, in order.
    package var lines: [LogLine]

    package init(stream: LogStreamKey, lines: [LogLine]) {
        self.stream = stream
        self.lines = lines
    }
}

/// A log line with the container log it belongs to: one item of a `logs` answer.
package struct LogEntry: Sendable, Equatable {
    /// The container log.
    package var stream: LogStreamKey
    package var line: LogLine

    package init(stream: LogStreamKey, line: LogLine) {
        self.stream = stream
        self.line = line
    }
}

/// Statistics of one pod's logs, for the pods table.
package struct PodLogStats: Sendable, Equatable {
    /// Lines over all its container logs.
    package var lines: Int
    /// The earliest recognised timestamp, in microseconds since 1970.
    package var firstMicros: Int64?
    /// The latest recognised timestamp.
    package var lastMicros: Int64?
    /// Containers whose log could not be fetched, with the message (`previous` logs under `<name> (previous)`).
    package var fetchErrors: [String: String]

    package init(
        lines: Int = 0, firstMicros: Int64? = nil, lastMicros: Int64? = nil, fetchErrors: [String: String] = [:]
    ) {
        self.lines = lines
        self.firstMicros = firstMicros
        self.lastMicros = lastMicros
        self.fetchErrors = fetchErrors
    }
}

/// What analytics knows of one namespace: its log volume and its Warning events.
package struct NamespaceActivity: Sendable, Equatable {
    /// Log lines of the namespace's pods.
    package var logLines: Int
    /// Warning events in the namespace.
    package var warningEvents: Int

    package init(logLines: Int = 0, warningEvents: Int = 0) {
        self.logLines = logLines
        self.warningEvents = warningEvents
    }
}
