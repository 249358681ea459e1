import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Gives the HTTP layer's own answer to bytes that are not valid HTTP/1.1 a problem document.
///
/// When the request parser fails, Hummingbird answers by itself, before any route or middleware: `400`, no body, no
/// `Date` (every answer of the application has one). This handler recognises that answer and replaces it with an RFC
/// 9457 problem: `431 request-header-fields-too-large` when the header block overflowed the parser's limit,
/// `400 malformed-request` otherwise, with the parser's reason in `detail`.
final class MalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var parserError: HTTPParserError?
    private var pendingBody: ByteBuffer?

    init() {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError { parserError = error }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head)
        where head.status == .badRequest && head.headerFields[.date] == nil
            && head.headerFields[.contentLength] == "0":
            let (status, name, title) =
                parserError == .headerOverflow
                ? (
                    HTTPResponse.Status.requestHeaderFieldsTooLarge, "request-header-fields-too-large",
                    "Request header fields too large"
                )
                : (.badRequest, "malformed-request", "Malformed request")
            let requestID = RequestIDMiddleware.newID()
            let problem = Problem(
                type: "https://kubin.dev/problems/\(name)", title: title, status: status.code,
                detail: "The request is not valid HTTP/1.1 (\(parserError.map { "\($0)" } ?? "unreadable")).",
                instance: "", requestId: requestID)
            guard let body = try? JSON.encode(problem) else {
                context.write(data, promise: promise)
                return
            }
            head.status = status
            head.headerFields[.contentType] = Problem.mediaType
            head.headerFields[.contentLength] = String(body.readableBytes)
            head.headerFields[RequestIDMiddleware.header] = requestID
            pendingBody = body
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where pendingBody != nil:
            context.write(wrapOutboundOut(.body(pendingBody!)), promise: nil)
            pendingBody = nil
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }
}
