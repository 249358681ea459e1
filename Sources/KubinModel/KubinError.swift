/// An error the gateway can explain to a client: a stable ``Code``, a human `detail` safe to show, and, for logs only,
/// the underlying cause.
///
/// Clients throw their own errors; orchestrators translate them into this type; the gateway maps each ``Code`` to an
/// HTTP status and an RFC 9457 problem type in one table.
package struct KubinError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// A stable machine-readable reason. Its `name` is the last segment of the problem `type` URI.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The kebab-case name, for example `too-many-uploads`.
        package let name: String
        private init(_ name: String) { self.name = name }
        package var description: String { name }

        /// The snapshot (or route) does not exist.
        package static let notFound = Code("not-found")
        /// A path, query or header parameter is malformed or out of range.
        package static let invalidParameter = Code("invalid-parameter")
        /// The upload's first bytes are not gzip, zip or JSON.
        package static let unsupportedFormat = Code("unsupported-format")
        /// The upload is larger than the configured limit.
        package static let payloadTooLarge = Code("payload-too-large")
        /// Every upload slot of this instance is taken.
        package static let tooManyUploads = Code("too-many-uploads")
        /// An `Idempotency-Key` was reused with different bytes.
        package static let idempotencyKeyReused = Code("idempotency-key-reused")
        /// The request body ended before the length it announced.
        package static let incompleteBody = Code("incomplete-body")
        /// A `Range` header asks for bytes the object does not have.
        package static let rangeNotSatisfiable = Code("range-not-satisfiable")
        /// An `Expect` header asks for something other than `100-continue`.
        package static let expectationFailed = Code("expectation-failed")
        /// The route exists but not for this method.
        package static let methodNotAllowed = Code("method-not-allowed")
        /// A dependency (metadata, storage, analytics, cache) failed or timed out.
        package static let dependencyUnavailable = Code("dependency-unavailable")
        /// The instance is shutting down and takes no new work.
        package static let shuttingDown = Code("shutting-down")
        /// The snapshot exists but is not indexed yet (or its indexing failed).
        package static let snapshotNotReady = Code("snapshot-not-ready")
        /// No valid identity: the credentials are missing, malformed, expired, revoked or not trusted.
        package static let unauthenticated = Code("unauthenticated")
        /// The identity is valid but lacks the scope the route needs.
        package static let forbidden = Code("forbidden")
        /// The caller sent more requests than its rate limit allows.
        package static let rateLimited = Code("rate-limited")
        /// The request's URL is longer than the gateway reads.
        package static let uriTooLong = Code("uri-too-long")
        /// The client took too long to send its request head or body.
        package static let requestTimeout = Code("request-timeout")
        /// The request is not valid HTTP/1.1 (its framing, or a header every request must have).
        package static let malformedRequest = Code("malformed-request")
        /// The request asks for something the gateway does not do (CONNECT, a transfer coding).
        package static let notImplemented = Code("not-implemented")
        /// The instance holds as many connections as it allows.
        package static let tooManyConnections = Code("too-many-connections")
        /// No instance of the route's upstream may receive requests (all failing their checks or ejected).
        package static let noHealthyUpstream = Code("no-healthy-upstream")
        /// The route's upstream has as many requests in flight as its `maxRequests` allows (a bulkhead).
        package static let upstreamSaturated = Code("upstream-saturated")
        /// The upstream instance could not be reached, or broke the connection before answering.
        package static let badGateway = Code("bad-gateway")
        /// The upstream instance did not answer within the route's time-out.
        package static let gatewayTimeout = Code("gateway-timeout")
        /// Anything unexpected; the detail says nothing about internals.
        package static let internalError = Code("internal-error")
    }

    /// The stable reason.
    package var code: Code
    /// A sentence for the client: never SQL, keys, paths or credentials.
    package var detail: String
    /// The parameter at fault, for ``Code/invalidParameter``.
    package var parameter: String?
    /// A finer machine-readable reason within the code (for ``Code/unauthenticated``: `expired`, `bad-signature`, ...).
    package var reason: String?
    /// How long the client should wait before retrying, for ``Code/tooManyUploads`` and ``Code/shuttingDown``.
    package var retryAfterSeconds: Int?
    /// The cause, for logs only.
    package var underlying: (any Error)?

    package init(
        _ code: Code, _ detail: String, parameter: String? = nil, reason: String? = nil,
        retryAfterSeconds: Int? = nil, underlying: (any Error)? = nil
    ) {
        self.code = code
        self.detail = detail
        self.parameter = parameter
        self.reason = reason
        self.retryAfterSeconds = retryAfterSeconds
        self.underlying = underlying
    }

    /// The snapshot `id` does not exist (or is not visible to the caller).
    package static func snapshotNotFound(_ id: String) -> KubinError {
        KubinError(.notFound, "No snapshot with id '\(id.prefix(64))' exists.")
    }

    /// The parameter `name` is invalid; `rule` says what is allowed.
    package static func invalidParameter(_ name: String, _ rule: String) -> KubinError {
        KubinError(.invalidParameter, "Parameter '\(name)' is invalid: \(rule).", parameter: name)
    }

    /// `dependency` failed; `underlying` goes to the log only.
    package static func dependencyUnavailable(_ dependency: String, underlying: any Error) -> KubinError {
        KubinError(
            .dependencyUnavailable, "The \(dependency) store is unavailable; retry later.", underlying: underlying)
    }

    package var description: String { "\(code): \(detail)" }

    package var debugDescription: String {
        var text = description
        if let underlying { text += " (cause: \(String(reflecting: underlying)))" }
        return text
    }
}
