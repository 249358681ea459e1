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
        if let refusal = Self.refusal(of: request.head) { throw refusal }
        return try await next(request, context)
    }

    /// Why `head` (not a CONNECT) may not be served: its `Host` or its transfer coding; nil when it may.
    static func refusal(of head: HTTPRequest) -> KubinError? {
        guard let authority = head.authority, head.headerFields[values: Self.host].isEmpty else {
            return KubinError(
                .malformedRequest,
                head.authority == nil
                    ? "The request has no Host header (RFC 9112, section 3.2)."
                    : "The request has more than one Host header (RFC 9112, section 3.2).")
        }
        guard Self.isAuthority(authority) else {
            return KubinError(.malformedRequest, "The Host header is not a host name or address with an optional port.")
        }
        if let codings = head.headerFields[.transferEncoding] {
            let names = codings.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard names == ["chunked"] else {
                return KubinError(
                    .notImplemented,
                    "The transfer coding '\(String(codings.prefix(64)))' is not supported: send the body chunked or "
                        + "with a Content-Length.")
            }
        }
        return nil
    }

    /// CONNECT, answered on any connection.
    static let connectRefused = KubinError(
        .notImplemented, "CONNECT is not supported: this gateway is no proxy or tunnel.")

    /// `host[:port]`: a name or IPv4 address of letters, digits, `-`, `.`, `_`, `~`, `%`, or a bracketed IPv6 address,
    /// with digits after a `:`.
    private static func isAuthority(_ text: String) -> Bool {
        // On bytes: every request passes here, and Character's Unicode classes cost more than the whole check.
        let bytes = text.utf8[...]
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let address = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !address.isEmpty,
                address.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return false }
            let rest = bytes[bytes.index(after: close)...]
            return rest.isEmpty || (rest.first == UInt8(ascii: ":") && rest.dropFirst().allSatisfy(isDigit))
        }
        let colon = bytes.firstIndex(of: UInt8(ascii: ":"))
        let name = bytes[..<(colon ?? bytes.endIndex)]
        guard !name.isEmpty, name.count <= 255, name.allSatisfy(isNameByte) else { return false }
        guard let colon else { return true }
        let port = bytes[bytes.index(after: colon)...]
        return !port.isEmpty && port.count <= 5 && port.allSatisfy(isDigit)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    /// Letters, digits, `-`, `.`, `_`, `~`, `%`.
    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"), UInt8(ascii: "%"):
            true
        default: false
        }
    }
}
