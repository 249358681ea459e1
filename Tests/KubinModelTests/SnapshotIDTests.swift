import Foundation
import Testing

@testable import KubinModel

@Suite struct SnapshotIDTests {
    @Test func generatedIDsAreCanonicalVersion7UUIDs() throws {
        let id = SnapshotIDGenerator().next(at: Date(timeIntervalSince1970: 1_700_000_000.123))
        #expect(SnapshotID(validating: id.rawValue) == id)
        let characters = Array(id.rawValue)
        #expect(characters[14] == "7")
        #expect("89ab".contains(characters[19]))
        // The first 48 bits are the Unix time in milliseconds.
        let millis = UInt64(id.rawValue.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16)
        #expect(millis == 1_700_000_000_123)
    }

    @Test func idsMadeInTheSameMillisecondOrStepsBackStillIncrease() {
        let instant = Date(timeIntervalSince1970: 1_800_000_000)
        let generator = SnapshotIDGenerator()
        let ids = (0..<10_000).map { index in
            generator.next(at: index % 7 == 0 ? instant - 0.5 : instant)  // some from a clock that stepped back
        }
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 })
        #expect(Set(ids).count == ids.count)
    }

    @Test func idsSortByCreationTime() {
        let generator = SnapshotIDGenerator()
        let older = generator.next(at: Date(timeIntervalSince1970: 1_700_000_000))
        let newer = generator.next(at: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(older < newer)
    }

    @Test(arguments: [
        "", "not-an-id", "0192F1C4-6F2A-7B3E-9C1D-2A4B6C8D0E1F", "0192f1c4-6f2a-7b3e-9c1d-2a4b6c8d0e1",
        "../../etc/passwd",
        "0192f1c46f2a7b3e9c1d2a4b6c8d0e1f0000",
    ])
    func refusesAnythingButTheCanonicalForm(_ text: String) {
        #expect(SnapshotID(validating: text) == nil)
    }
}

@Suite struct ClusterNameTests {
    @Test(arguments: ["prod", "prod-eu-1", "kind.local", "A_b-9", String(repeating: "x", count: 128)])
    func acceptsKubernetesStyleNames(_ text: String) {
        #expect(ClusterName(validating: text)?.rawValue == text)
    }

    @Test(arguments: [
        "", "-leading", ".hidden", "has space", "slash/name", "ünicode", String(repeating: "x", count: 129), "a\u{0}b",
    ])
    func refusesOthers(_ text: String) {
        #expect(ClusterName(validating: text) == nil)
    }
}

@Suite struct SnapshotCursorTests {
    @Test func roundTripsThroughItsToken() throws {
        let cursor = SnapshotCursor(
            createdAtMicros: 1_700_000_000_123_000, id: SnapshotID.generate(at: Date()))
        let token = cursor.token
        #expect(!token.contains("=") && !token.contains("/") && !token.contains("+"))
        #expect(SnapshotCursor(token: token) == cursor)
    }

    @Test(arguments: ["", "garbage", "djEuMTIzLm5vdC1hbi1pZA", "v1.1.x", String(repeating: "A", count: 200)])
    func refusesForeignTokens(_ token: String) {
        #expect(SnapshotCursor(token: token) == nil)
    }
}
