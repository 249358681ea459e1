import Foundation

/// A reproducible random generator (SplitMix64) for property and fuzz tests.
///
/// ``forThisRun()`` takes its seed from `KUBIN_TEST_SEED` when set, else a fresh one, and prints it: a failure names
/// its seed (``replay``), and `KUBIN_TEST_SEED=<seed> swift test --filter <test>` replays it exactly.
package struct SeededRandom: RandomNumberGenerator, Sendable {
    package let seed: UInt64
    private var state: UInt64

    package init(seed: UInt64) {
        self.seed = seed
        self.state = seed
    }

    /// A generator for one test run, its seed printed with `test`'s name.
    package static func forThisRun(_ test: String = #function) -> SeededRandom {
        let seed =
            ProcessInfo.processInfo.environment["KUBIN_TEST_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 0...(1 << 53))
        let generator = SeededRandom(seed: seed)
        print("\(test): \(generator.replay)")
        return generator
    }

    /// How to run this sequence again, for failure messages.
    package var replay: String { "seed \(seed) (KUBIN_TEST_SEED=\(seed) replays it)" }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
