import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The test suites' own process launcher (TestSupport), which every server and script of the tests goes through.
@Suite struct ChildProcessTests {
    @Test func reportsExitCodesAndSignalsAsAShellDoes() throws {
        #expect(try ChildProcess(["sh", "-c", "exit 3"]).waitUntilExit() == 3)
        let sleeper = try ChildProcess(["sleep", "60"])
        #expect(sleeper.isRunning)
        sleeper.signal(SIGKILL)
        #expect(sleeper.waitUntilExit() == 128 + SIGKILL)
        #expect(!sleeper.isRunning)
    }

    @Test func pipesCarryInputAndOutputAndTheEnvironmentIsTheOneGiven() throws {
        let child = try ChildProcess(
            ["sh", "-c", "tr a-z A-Z; echo \"$GREETING\" >&2"],
            environment: ["GREETING": "hello", "PATH": "/usr/bin:/bin"],
            input: .pipe, output: .pipe, error: .pipe)
        child.standardInput?.write(Data("quiet words".utf8))
        try child.standardInput?.close()
        #expect(String(decoding: child.standardOutput?.readDataToEndOfFile() ?? Data(), as: UTF8.self) == "QUIET WORDS")
        #expect(String(decoding: child.standardError?.readDataToEndOfFile() ?? Data(), as: UTF8.self) == "hello\n")
        #expect(child.waitUntilExit() == 0)
    }

    /// A child holds only its three streams: a pipe the test process has open (without close-on-exec) is not among
    /// them, so its reader sees the end when the writer closes it, whatever children run meanwhile.
    @Test func aChildInheritsNoOtherDescriptor() throws {
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        defer { for end in ends { close(end) } }
        let child = try ChildProcess(["sh", "-c", "ls /proc/$$/fd"], output: .pipe)
        let listed = String(decoding: child.standardOutput?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
            .split(separator: "\n").compactMap { Int32($0) }
        #expect(child.waitUntilExit() == 0)
        #expect(!listed.contains(ends[0]) && !listed.contains(ends[1]), "\(listed)")
        #expect(listed.contains(0) && listed.contains(1) && listed.contains(2))
    }

    @Test func aMissingProgramIsAnError() {
        #expect(throws: SpawnFailed.self) { try ChildProcess(["no-such-program-\(UUID().uuidString)"]) }
    }
}
