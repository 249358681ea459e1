import Hummingbird
import KubinModel

/// An RFC 9457 problem document: the body of every error answer.
struct Problem: Encodable, Sendable {
    /// A stable URI naming the kind of problem: `https://kubin.dev/problems/<code>`.
    var type: String
    /// A short, fixed summary of the kind.
    var title: String
    /// The HTTP status.
    var status: Int
    /// What happened this time, for a person.
    var detail: String
    /// The request path.
    var instance: String
    /// The request's id, as in `X-Request-ID` and the logs.
    var requestId: String
    /// The parameter at fault, for invalid-parameter problems.
    var parameter: String?
    /// The finer reason, for authentication problems (`expired`, `bad-signature`, ...).
    var reason: String?

    /// The media type of problem documents.
    static let mediaType = "application/problem+json"

    /// The one table from error code to HTTP status and title.
    static func describe(_ code: KubinError.Code) -> (status: HTTPResponse.Status, title: String) {
        switch code {
        case .notFound: (.notFound, "Not found")
        case .invalidParameter: (.badRequest, "Invalid parameter")
        case .incompleteBody: (.badRequest, "Incomplete request body")
        case .unsupportedFormat: (.unsupportedMediaType, "Unsupported snapshot format")
        case .payloadTooLarge: (.contentTooLarge, "Content too large")
        case .uriTooLong: (.uriTooLong, "URI too long")
        case .requestTimeout: (.requestTimeout, "Request timeout")
        case .malformedRequest: (.badRequest, "Malformed request")
        case .notImplemented: (.notImplemented, "Not implemented")
        case .tooManyConnections: (.serviceUnavailable, "Too many connections")
        case .tooManyUploads: (.tooManyRequests, "Too many uploads in flight")
        case .idempotencyKeyReused: (.unprocessableContent, "Idempotency key reused")
        case .rangeNotSatisfiable: (.rangeNotSatisfiable, "Range not satisfiable")
        case .methodNotAllowed: (.methodNotAllowed, "Method not allowed")
        case .expectationFailed: (.expectationFailed, "Expectation failed")
        case .dependencyUnavailable: (.serviceUnavailable, "Dependency unavailable")
        case .shuttingDown: (.serviceUnavailable, "Shutting down")
        case .snapshotNotReady: (.conflict, "Snapshot not ready")
        case .unauthenticated: (.unauthorized, "Authentication required")
        case .forbidden: (.forbidden, "Insufficient scope")
        case .rateLimited: (.tooManyRequests, "Rate limit exceeded")
        case .noHealthyUpstream: (.serviceUnavailable, "No healthy upstream")
        case .upstreamSaturated: (.serviceUnavailable, "Upstream saturated")
        case .badGateway: (.badGateway, "Bad gateway")
        case .gatewayTimeout: (.gatewayTimeout, "Gateway timeout")
        default: (.internalServerError, "Internal error")
        }
    }

    /// The problem answer for `error`, with `extraHeaders` added.
    static func response(
        for error: KubinError, path: String, requestID: String, extraHeaders: HTTPFields = [:]
    ) -> Response {
        let (head, body) = parts(for: error, path: path, requestID: requestID, extraHeaders: extraHeaders)
        return Response(status: head.status, headers: head.headerFields, body: ResponseBody(byteBuffer: body))
    }

    /// The head and body of the problem answer for `error`, with `extraHeaders` added (the proxy writes them to
    /// its channel itself).
    static func parts(
        for error: KubinError, path: String, requestID: String, extraHeaders: HTTPFields = [:]
    ) -> (head: HTTPResponse, body: ByteBuffer) {
        let (status, title) = describe(error.code)
        let problem = Problem(
            type: "https://kubin.dev/problems/\(error.code.name)", title: title, status: status.code,
            detail: error.detail, instance: path, requestId: requestID, parameter: error.parameter,
            reason: error.reason)
        var head = HTTPResponse(status: status, headerFields: extraHeaders)
        head.headerFields[.contentType] = mediaType
        if let seconds = error.retryAfterSeconds { head.headerFields[.retryAfter] = String(seconds) }
        if error.code == .unauthenticated {
            // RFC 6750 §3: which scheme to use, and that the credential sent (if any) was not good.
            head.headerFields[.wwwAuthenticate] =
                error.reason == AuthFailure.missing.reason
                ? "Bearer realm=\"kubin\"" : "Bearer realm=\"kubin\", error=\"invalid_token\""
        }
        // Encoding a struct of strings cannot fail; the status alone answers if it somehow does.
        return (head, (try? JSON.encode(problem)) ?? ByteBuffer())
    }

    /// The head and body of the problem answer for `error`, for channel handlers that answer before any route (a
    /// fresh request id each: no middleware has assigned one).
    static func channelAnswer(for error: KubinError) -> (head: HTTPResponse, body: ByteBuffer) {
        let (status, title) = describe(error.code)
        let requestID = RequestIDMiddleware.newID()
        let problem = Problem(
            type: "https://kubin.dev/problems/\(error.code.name)", title: title, status: status.code,
            detail: error.detail, instance: "", requestId: requestID)
        let body = (try? JSON.encode(problem)) ?? ByteBuffer()
        var head = HTTPResponse(status: status)
        head.headerFields[.contentType] = mediaType
        head.headerFields[.contentLength] = String(body.readableBytes)
        head.headerFields[RequestIDMiddleware.header] = requestID
        head.headerFields[.connection] = "close"
        if let seconds = error.retryAfterSeconds { head.headerFields[.retryAfter] = String(seconds) }
        return (head, body)
    }

    /// A problem with no more meaning than its status (RFC 9457 `about:blank`), for errors the HTTP layer raises.
    static func response(
        status: HTTPResponse.Status, detail: String, path: String, requestID: String, extraHeaders: HTTPFields = [:]
    ) -> Response {
        let problem = Problem(
            type: "about:blank", title: status.reasonPhrase, status: status.code, detail: detail, instance: path,
            requestId: requestID)
        return response(problem, status: status, headers: extraHeaders)
    }

    private static func response(_ problem: Problem, status: HTTPResponse.Status, headers: HTTPFields) -> Response {
        do {
            return try JSON.response(problem, status: status, headers: headers, contentType: mediaType)
        } catch {
            // Encoding a struct of strings cannot fail; answer with the status alone if it somehow does.
            return Response(status: status, headers: headers)
        }
    }
}
