import Foundation
import NIOCore
import NIOPosix

/// Asks one DNS server for A, AAAA and SRV records over UDP (``DNSMessage`` builds and reads the messages): what
/// upstream discovery re-resolves names with. A query that gets no matching answer within `timeout` is sent once more.
package struct DNSResolver: Sendable {
    /// Why a name was not resolved.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    private let server: SocketAddress
    private let timeout: Duration

    /// Throws when `host` is not an IP address.
    package init(host: String, port: Int, timeout: Duration = .seconds(2)) throws {
        self.server = try SocketAddress(ipAddress: host, port: port)
        self.timeout = timeout
    }

    /// The first `nameserver` of `/etc/resolv.conf` (the cluster's DNS on Kubernetes), else 127.0.0.1, on port 53.
    package static func systemServer(resolvConf: String = "/etc/resolv.conf") -> (host: String, port: Int) {
        let text = (try? String(contentsOfFile: resolvConf, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 2, fields[0] == "nameserver" { return (String(fields[1]), 53) }
        }
        return ("127.0.0.1", 53)
    }

    /// The records of `type` for `name`; empty when the name has none (or does not exist).
    package func records(of name: String, type: DNSMessage.RecordType) async throws -> [DNSMessage.Record] {
        var lastError: any Error = Failure(description: "no answer from \(server)")
        for _ in 0..<2 {
            do {
                return try await ask(name, type: type)
            } catch let error as Failure {
                lastError = error
            }
        }
        throw lastError
    }

    private func ask(_ name: String, type: DNSMessage.RecordType) async throws -> [DNSMessage.Record] {
        let id = UInt16.random(in: .min ... .max)
        let query = try DNSMessage.query(id: id, name: name, type: type)
        let server = server
        let timeout = timeout
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: server.protocol == .inet6 ? "::" : "0.0.0.0", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: query)))
            return try await withThrowingTaskGroup(of: [DNSMessage.Record].self) { group in
                group.addTask {
                    for try await envelope in inbound where envelope.remoteAddress == server {
                        // Another query's late answer, or garbage: wait for ours.
                        if let records = try? DNSMessage.records(
                            in: Array(envelope.data.readableBytesView), id: id, type: type)
                        {
                            return records
                        }
                    }
                    throw Failure(description: "the socket closed")
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw Failure(description: "no answer from \(server) within \(timeout)")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        }
    }
}
