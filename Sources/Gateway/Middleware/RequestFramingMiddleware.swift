import HTTPTypes
import Hummingbird
import KubinModel

/// Refuses request heads RFC 9112 does not allow to be served, before anything reads their bodies:
/// - no `Host`, more than one, or one that is not `host[:port]`: `400 malformed-request` (§3.2);
/// - a transfer coding other than `chunked` (or `chunked` not alone): `501 not-implemented` (§6.1), since a body
///   whose coding is ignored would be read as something it is not;
/// - `CONNECT`: `501 not-implemented`, closing the connection (the gateway is no tunnel; NIO frames no body for an
///   answer to CONNECT, so the close is what ends it). A CONNECT that opens a connection is answered whole, body
///   included, by ``ConnectionGuard`` before the HTTP decoder sees it.
struct RequestFramingMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    private static let host = HTTPField.Name("Host")!

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if request.method == .connect {
            var answer = Problem.response(
                for: Self.connectRefused, path: request.uri.path, requestID: context.requestID)
            answer.headers[.connection] = "close"
            return answer
        }
        guard let authority = request.head.authority, request.headers[values: Self.host].isEmpty else {
            throw KubinError(
                .malformedRequest,
                request.head.authority == nil
                    ? "The request has no Host header (RFC 9112, section 3.2)."
                    : "The request has more than one Host header (RFC 9112, section 3.2).")
        }
        guard Self.isAuthority(authority) else {
            throw KubinError(.malformedRequest, "The Host header is not a host name or address with an optional port.")
        }
        if let codings = request.headers[.transferEncoding] {
            let names = codings.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard names == ["chunked"] else {
                throw KubinError(
                    .notImplemented,
                    "The transfer coding '\(String(codings.prefix(64)))' is not supported: send the body chunked or "
                        + "with a Content-Length.")
            }
        }
        return try await next(request, context)
    }

    /// CONNECT, answered on any connection.
    static let connectRefused = KubinError(
        .notImplemented, "CONNECT is not supported: this gateway is no proxy or tunnel.")

    /// `host[:port]`: a name or IPv4 address of letters, digits, `-`, `.`, `_`, `~`, `%`, or a bracketed IPv6 address,
    /// with digits after a `:`.
    private static func isAuthority(_ text: String) -> Bool {
        var host = Substring(text)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let address = host[host.index(after: host.startIndex)..<close]
            guard !address.isEmpty, address.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return false
            }
            host = host[host.index(after: close)...]
            return host.isEmpty || (host.first == ":" && host.dropFirst().allSatisfy(\.isWholeNumber))
        }
        let parts = host.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = parts[0]
        guard !name.isEmpty, name.utf8.count <= 255,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._~%".contains($0)) })
        else { return false }
        return parts.count == 1 || (!parts[1].isEmpty && parts[1].count <= 5 && parts[1].allSatisfy(\.isWholeNumber))
    }
}
