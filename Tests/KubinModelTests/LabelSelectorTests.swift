import Testing

@testable import KubinModel

@Suite struct LabelSelectorTests {
    @Test func parsesEveryForm() throws {
        let selector = try LabelSelector(
            parsing: "app=web, tier==front,env!=prod,zone in (a, b),region notin (x),example.com/owner,!legacy")
        #expect(
            selector.requirements == [
                .equals("app", "web"), .equals("tier", "front"), .notEquals("env", "prod"), .isIn("zone", ["a", "b"]),
                .notIn("region", ["x"]), .exists("example.com/owner"), .doesNotExist("legacy"),
            ])
        #expect(try LabelSelector(parsing: "index").requirements == [.exists("index")], "not read as 'in'")
        #expect(try LabelSelector(parsing: "a=").requirements == [.equals("a", "")], "an empty value is allowed")
        #expect(try LabelSelector(parsing: "b=2,a in (y,x)").canonical == "a in (x,y),b=2")
        #expect(
            try LabelSelector(parsing: "a in (x,y),b=2").canonical
                == (try LabelSelector(parsing: "b=2,a in (y, x)")).canonical)
    }

    @Test func refusesWhatKubernetesRefuses() {
        for bad in [
            "", ",", "a=b,", "=b", "a b", "a in x", "a in (x", "a=-x", "-a=b", "a/b/c=d", "Example.com/a=b",
            String(repeating: "k", count: 64) + "=v", "a=" + String(repeating: "v", count: 64), "a!b", "a=(b)",
            "a notin ()x",
        ] {
            #expect(throws: LabelSelectorError.self, "\(bad)") { try LabelSelector(parsing: bad) }
        }
        #expect(throws: LabelSelectorError("'a$' is not a valid label key at character 1")) {
            try LabelSelector(parsing: "a$=b")
        }
    }

    /// Random selectors over a small alphabet, matched against random label sets, agree with a reference written
    /// from the Kubernetes rules.
    @Test func matchingAgreesWithTheReference() throws {
        var random = SystemRandomNumberGenerator()
        let keys = ["app", "tier", "x.io/name"]
        let values = ["a", "b", "c"]
        for _ in 0..<500 {
            var text: [String] = []
            var reference: [([String: String]) -> Bool] = []
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let key = keys.randomElement(using: &random)!
                let value = values.randomElement(using: &random)!
                let set = Array(values.shuffled(using: &random).prefix(Int.random(in: 1...2, using: &random)))
                switch Int.random(in: 0..<6, using: &random) {
                case 0: text.append("\(key)=\(value)"); reference.append { $0[key] == value }
                case 1: text.append("\(key)!=\(value)"); reference.append { $0[key] != value }
                case 2:
                    text.append("\(key) in (\(set.joined(separator: ",")))");
                    reference.append { $0[key].map(set.contains) == true }
                case 3:
                    text.append("\(key) notin (\(set.joined(separator: ",")))");
                    reference.append { $0[key].map(set.contains) != true }
                case 4: text.append(key); reference.append { $0[key] != nil }
                default: text.append("!" + key); reference.append { $0[key] == nil }
                }
            }
            let selector = try LabelSelector(parsing: text.joined(separator: ","))
            var labels: [String: String] = [:]
            for key in keys where Bool.random(using: &random) { labels[key] = values.randomElement(using: &random) }
            #expect(selector.matches(labels) == reference.allSatisfy { $0(labels) }, "\(text) on \(labels)")
        }
    }

    @Test func cursorsRoundTripAndRefuseOthers() {
        let cursor = IndexCursor(["Pod", "kube-system", "name with \"quotes\""])
        #expect(IndexCursor(token: cursor.token, arity: 3) == cursor)
        #expect(IndexCursor(token: cursor.token, arity: 2) == nil, "another listing's cursor")
        #expect(IndexCursor(token: "not a cursor", arity: 3) == nil)
        #expect(IndexCursor(token: String(repeating: "A", count: 5000), arity: 1) == nil)
        #expect(IndexCursor(["7", "x"]).integer(0) == 7 && IndexCursor(["7", "x"]).integer(1) == nil)
    }
}
