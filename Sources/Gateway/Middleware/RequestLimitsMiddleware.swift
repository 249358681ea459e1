import HTTPTypes
import Hummingbird
import KubinModel

/// Refuses requests larger than the gateway reads: a URL over `maxURLBytes` gets `414 uri-too-long`; a body over
/// `maxBodyBytes` on any route but the upload (which has its own limit, `uploads.maxBytes`, enforced while it streams)
/// gets `413 payload-too-large` before it is read. The header block's own limit (431) is the HTTP parser's.
struct RequestLimitsMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// The longest URL (path and query) read.
    let maxURLBytes: Int
    /// The largest body of a request that is not an upload.
    let maxBodyBytes: Int64

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let length = request.uri.description.utf8.count
        guard length <= maxURLBytes else {
            throw KubinError(.uriTooLong, "The URL has \(length) bytes; at most \(maxURLBytes) are read.")
        }
        // Uploads have their own limit.
        let isUpload = request.method == .post && request.uri.path == "/api/v1/snapshots"
        if !isUpload, let declared = request.headers[.contentLength].flatMap(Int64.init),
            declared > maxBodyBytes
        {
            throw KubinError(
                .payloadTooLarge, "This route takes bodies of at most \(maxBodyBytes) bytes; this one has \(declared).")
        }
        return try await next(request, context)
    }
}
