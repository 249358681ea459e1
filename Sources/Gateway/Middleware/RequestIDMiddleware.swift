import HTTPTypes
import Hummingbird
import KubinModel
import KubinSupport
import Synchronization

/// Gives every request an id: the client's `X-Request-ID` when well-formed (1 to 128 of `A-Z a-z 0-9 . _ : -`),
/// otherwise a new one. The id is echoed on the response and carried by every log line of the request.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    /// The request header (and response header) carrying the id.
    static let header = HTTPField.Name("X-Request-ID")!

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let offered = request.headers[Self.header]
        let id = offered.flatMap { Self.isWellFormed($0) ? $0 : nil } ?? context.id
        context.requestID = id
        context.logger[metadataKey: "hb.request.id"] = nil
        context.logger[metadataKey: "request_id"] = .string(id)
        var response = try await next(request, context)
        response.headers[Self.header] = id
        return response
    }

    /// A fresh id for a request no router has seen (the proxy's, or an answer given by a channel handler): 32 hex
    /// digits, a random half drawn once per process and a counter, as Hummingbird makes its own; sixteen random
    /// bytes per request would cost sixteen `getrandom` calls.
    static func newID() -> String {
        let number = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return hex(processPart) + hex(number)
    }

    private static let processPart = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    /// `value` as 16 lower-case hex digits.
    private static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            let digits = Array("0123456789abcdef".utf8)
            for index in 0..<16 { buffer[index] = digits[Int((value >> (60 - 4 * UInt64(index))) & 0xF)] }
            return 16
        }
    }

    /// True for 1 to 128 characters of `A-Z a-z 0-9 . _ : -`.
    static func isWellFormed(_ id: String) -> Bool {
        let bytes = id.utf8
        return !bytes.isEmpty && bytes.count <= 128
            && bytes.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
                    UInt8(ascii: "-"):
                    true
                default: false
                }
            }
    }
}
