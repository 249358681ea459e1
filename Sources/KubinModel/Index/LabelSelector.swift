/// A Kubernetes label selector (`app=web,tier!=db,env in (prod,stage),!legacy`), parsed and validated.
///
/// The syntax is the one `kubectl get -l` accepts: requirements separated by commas, each `key`, `!key`, `key=value`,
/// `key==value`, `key!=value`, `key in (v1,v2)` or `key notin (v1,v2)`. As in Kubernetes, `!=` and `notin` also match
/// objects that lack the key.
package struct LabelSelector: Sendable, Equatable {
    /// One requirement on one label.
    package enum Requirement: Sendable, Equatable {
        case exists(String)
        case doesNotExist(String)
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, [String])
        case notIn(String, [String])

        /// The label key it constrains.
        package var key: String {
            switch self {
            case .exists(let key), .doesNotExist(let key), .equals(let key, _), .notEquals(let key, _),
                .isIn(let key, _), .notIn(let key, _):
                key
            }
        }
    }

    /// The requirements; all must hold.
    package var requirements: [Requirement]

    /// Parses `text`; throws ``LabelSelectorError`` saying what is wrong and where.
    package init(parsing text: String) throws(LabelSelectorError) {
        var parser = Parser(text: Array(text.unicodeScalars))
        requirements = try parser.parse()
    }

    /// True when `labels` satisfy every requirement.
    package func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .exists(let key): labels[key] != nil
            case .doesNotExist(let key): labels[key] == nil
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .isIn(let key, let values): labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): !(labels[key].map(values.contains) ?? false)
            }
        }
    }

    /// The canonical text: requirements sorted, values sorted; equal selectors have equal text (used in cache keys).
    package var canonical: String {
        requirements.map { requirement in
            switch requirement {
            case .exists(let key): key
            case .doesNotExist(let key): "!" + key
            case .equals(let key, let value): "\(key)=\(value)"
            case .notEquals(let key, let value): "\(key)!=\(value)"
            case .isIn(let key, let values): "\(key) in (\(values.sorted().joined(separator: ",")))"
            case .notIn(let key, let values): "\(key) notin (\(values.sorted().joined(separator: ",")))"
            }
        }.sorted().joined(separator: ",")
    }

    private struct Parser {
        let text: [Unicode.Scalar]
        var position = 0

        init(text: [Unicode.Scalar]) { self.text = text }

        mutating func parse() throws(LabelSelectorError) -> [Requirement] {
            guard text.count <= 4096 else { throw LabelSelectorError("the selector is longer than 4096 characters") }
            var requirements: [Requirement] = []
            repeat {
                requirements.append(try requirement())
                skipSpaces()
            } while consume(",")
            guard position == text.count else { throw error("expected ',' or the end") }
            guard !requirements.isEmpty else { throw LabelSelectorError("the selector is empty") }
            return requirements
        }

        mutating func requirement() throws(LabelSelectorError) -> Requirement {
            skipSpaces()
            if consume("!") {
                skipSpaces()
                return .doesNotExist(try key())
            }
            let key = try key()
            skipSpaces()
            if consume("!=") { return .notEquals(key, try value()) }
            if consume("==") || consume("=") { return .equals(key, try value()) }
            if consumeWord("notin") { return .notIn(key, try valueSet()) }
            if consumeWord("in") { return .isIn(key, try valueSet()) }
            return .exists(key)
        }

        /// `[prefix/]name`: the prefix a DNS subdomain (≤ 253), the name ≤ 63 of alphanumerics, `-`, `_`, `.`,
        /// starting and ending alphanumeric.
        mutating func key() throws(LabelSelectorError) -> String {
            let start = position
            let token = word()
            guard !token.isEmpty else { throw error("expected a label key") }
            let parts = token.split(separator: "/", omittingEmptySubsequences: false)
            let name = String(parts.last!)
            let isValid =
                switch parts.count {
                case 1: Self.isName(name)
                case 2: Self.isSubdomain(String(parts[0])) && Self.isName(name)
                default: false
                }
            guard isValid else {
                position = start
                throw error("'\(token)' is not a valid label key")
            }
            return token
        }

        /// A label value: empty, or ≤ 63 of alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
        mutating func value() throws(LabelSelectorError) -> String {
            skipSpaces()
            let start = position
            let token = word()
            guard token.isEmpty || Self.isName(token) else {
                position = start
                throw error("'\(token)' is not a valid label value")
            }
            return token
        }

        mutating func valueSet() throws(LabelSelectorError) -> [String] {
            skipSpaces()
            guard consume("(") else { throw error("expected '(' after 'in' or 'notin'") }
            var values: [String] = []
            while true {
                values.append(try value())
                skipSpaces()
                if !consume(",") { break }
            }
            guard consume(")") else { throw error("expected ',' or ')' in a value set") }
            return values
        }

        mutating func word() -> String {
            var scalars = String.UnicodeScalarView()
            while position < text.count, !" ,!=()".unicodeScalars.contains(text[position]) {
                scalars.append(text[position])
                position += 1
            }
            return String(scalars)
        }

        mutating func consume(_ literal: String) -> Bool {
            let scalars = Array(literal.unicodeScalars)
            guard text[position...].starts(with: scalars) else { return false }
            position += scalars.count
            return true
        }

        /// `word` followed by a space or `(`, so that a key named `index` is not read as `in`.
        mutating func consumeWord(_ word: String) -> Bool {
            let scalars = Array(word.unicodeScalars)
            let end = position + scalars.count
            guard text[position...].starts(with: scalars), end < text.count, text[end] == " " || text[end] == "("
            else { return false }
            position = end
            return true
        }

        mutating func skipSpaces() { while position < text.count, text[position] == " " { position += 1 } }

        func error(_ message: String) -> LabelSelectorError {
            LabelSelectorError("\(message) at character \(position + 1)")
        }

        static func isName(_ text: String) -> Bool {
            let scalars = Array(text.unicodeScalars)
            guard (1...63).contains(scalars.count), isAlphanumeric(scalars.first!), isAlphanumeric(scalars.last!)
            else { return false }
            return scalars.allSatisfy { isAlphanumeric($0) || $0 == "-" || $0 == "_" || $0 == "." }
        }

        static func isSubdomain(_ text: String) -> Bool {
            let scalars = Array(text.unicodeScalars)
            guard (1...253).contains(scalars.count) else { return false }
            return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                let label = Array(label.unicodeScalars)
                guard (1...63).contains(label.count), isLowerAlphanumeric(label.first!),
                    isLowerAlphanumeric(label.last!)
                else { return false }
                return label.allSatisfy { isLowerAlphanumeric($0) || $0 == "-" }
            }
        }

        static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
        }

        static func isLowerAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
        }
    }
}

/// Why a label selector was refused.
package struct LabelSelectorError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, for the problem's `detail`.
    package let message: String

    init(_ message: String) { self.message = message }

    package var description: String { message }
}
