import Synchronization

extension Atomic where Value == Int {
    /// Adds one when `allows` says the current value may grow (a count of places under a limit or a budget); true
    /// when it added. A compare-and-exchange loop: two callers cannot both take the last place.
    package func incrementIf(_ allows: (Int) -> Bool) -> Bool {
        var value = load(ordering: .relaxed)
        while allows(value) {
            let (exchanged, original) = compareExchange(expected: value, desired: value + 1, ordering: .relaxed)
            if exchanged { return true }
            value = original
        }
        return false
    }
}
