import Clients
import Foundation
import KubinSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Parsers for the value kinds settings take: whole numbers, byte sizes, durations, host names, origins, rates.
enum SettingValues {
    /// True for an IPv4 or IPv6 address, or a DNS name (labels of letters, digits and `-`, at most 253 characters).
    static func isHost(_ text: String) -> Bool {
        var address = in6_addr()
        if inet_pton(AF_INET, text, &address) == 1 || inet_pton(AF_INET6, text, &address) == 1 { return true }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return (1...253).contains(text.utf8.count)
            && labels.allSatisfy { label in
                (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                    && label.utf8.allSatisfy {
                        $0 < 0x80
                            && (Character(UnicodeScalar($0)).isLetter
                                || Character(UnicodeScalar($0)).isNumber || $0 == UInt8(ascii: "-"))
                    }
            }
    }

    /// True for addresses that only this machine can reach.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// True for `*` and for a browser origin: `http` or `https`, a host, an optional port, nothing else.
    static func isOrigin(_ text: String) -> Bool {
        if text == "*" { return true }
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            ["http", "https"].contains(scheme), let host = components.host, !host.isEmpty,
            components.path.isEmpty, components.query == nil, components.fragment == nil, components.user == nil
        else { return false }
        return text == "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
    }

    /// `text` as a whole number, or nil.
    static func integer(_ text: String) -> Int? { Int(text.trimmingCharacters(in: .whitespaces)) }

    /// `text` as a byte count: digits with an optional unit (B, KB, MB, GB, TB decimal; KiB, MiB, GiB, TiB binary).
    static func bytes(_ text: String) -> Int64? {
        let (number, unit) = split(text)
        let multipliers: [String: Int64] = [
            "": 1, "b": 1, "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000,
            "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
        ]
        guard let value = Int64(number), value >= 0, let multiplier = multipliers[unit.lowercased()] else {
            return nil
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// `text` as a duration: digits with a unit (ms, s, m, h); bare digits are seconds.
    static func duration(_ text: String) -> Duration? {
        let (number, unit) = split(text)
        guard let value = Int64(number), value >= 0, value <= 1_000_000_000 else { return nil }
        switch unit {
        case "ms": return .milliseconds(value)
        case "", "s": return .seconds(value)
        case "m": return .seconds(value * 60)
        case "h": return .seconds(value * 3600)
        default: return nil
        }
    }

    /// `duration` as an operator writes one: `500ms`, `30s`, `2m`, `1h`.
    static func text(of duration: Duration) -> String {
        let milliseconds = duration / .milliseconds(1)
        guard milliseconds.rounded() == milliseconds else { return "\(duration)" }
        let units: [(divisor: Int64, suffix: String)] = [(3_600_000, "h"), (60_000, "m"), (1000, "s")]
        let whole = Int64(milliseconds)
        for (divisor, suffix) in units where whole != 0 && whole % divisor == 0 { return "\(whole / divisor)\(suffix)" }
        return whole == 0 ? "0s" : "\(whole)ms"
    }

    /// `bytes` as an operator writes a size: `512KiB`, `64MiB`, or bytes.
    static func text(ofBytes bytes: Int64) -> String {
        let units: [(shift: Int64, suffix: String)] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")]
        for (shift, suffix) in units where bytes != 0 && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(suffix)"
        }
        return "\(bytes)"
    }

    /// A comma-separated list of origins (`https://ui.example.com`, `http://localhost:3000`) or `*`; nil when one
    /// is not an origin.
    static func origins(_ text: String) -> Set<String>? {
        let origins = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return origins.allSatisfy(isOrigin) ? Set(origins) : nil
    }

    /// A rate, `<requests>/<duration>` (1 to 10,000,000 requests per 1s to 24h), as `.some`; `off` is `.some(nil)`.
    static func rate(_ text: String) -> GCRA?? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed == "off" { return .some(nil) }
        let parts = trimmed.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let limit = Int(parts[0]), (1...10_000_000).contains(limit),
            let period = duration(parts[1]), (.seconds(1)...(.seconds(86400))).contains(period)
        else { return nil }
        return GCRA(limit: limit, period: period)
    }

    /// `url` with the password of its user-info (`scheme://user:password@host`) replaced by `<redacted>`.
    static func redactingPassword(in url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let authorityStart = schemeEnd.upperBound
        let authorityEnd = url[authorityStart...].firstIndex(where: { "/?#".contains($0) }) ?? url.endIndex
        guard let at = url[authorityStart..<authorityEnd].lastIndex(of: "@") else { return url }
        let userInfo = url[authorityStart..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return url[..<url.index(after: colon)] + "<redacted>" + url[at...]
    }

    /// Splits `"64MiB"` into `("64", "MiB")`.
    private static func split(_ text: String) -> (number: Substring, unit: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digitsEnd = trimmed.firstIndex(where: { !$0.isASCII || !$0.isNumber }) ?? trimmed.endIndex
        return (trimmed[..<digitsEnd], trimmed[digitsEnd...].trimmingCharacters(in: .whitespaces))
    }
}
