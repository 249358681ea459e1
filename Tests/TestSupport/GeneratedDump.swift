import Foundation

/// A dump made by `scripts/generate-dump.py`: the archive's bytes and the counts the generator printed.
package struct GeneratedDump: Sendable {
    package var bytes: [UInt8]
    /// The generator's counts: `pods`, `orphan_pods`, `containers`, `log_lines`, `resources`, `namespaces`...
    package var summary: [String: Int]
    /// Pods by phase.
    package var phases: [String: Int]

    /// Runs the generator with `arguments` (`--form`, `--archive`, `--seed`, `--namespaces`...; `--out` is added).
    package init(_ arguments: [String]) throws {
        let output = NSTemporaryDirectory() + "dump-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: output) }
        let printed = try python(
            "import subprocess, sys; sys.stdout.write(subprocess.check_output(sys.argv[1:]).decode())",
            arguments: ["python3", Self.script, "--out", output] + arguments)
        let printedSummary = try JSONSerialization.jsonObject(with: Data(printed)) as? [String: Any] ?? [:]
        summary = printedSummary.compactMapValues { $0 as? Int }
        phases = printedSummary["phases"] as? [String: Int] ?? [:]
        bytes = Array(try Data(contentsOf: URL(fileURLWithPath: output)))
    }

    /// A dump of `form` (`directory` or `stdout`) in `archive` (`tar.gz`, `zip`, `none`), made from `seed`.
    package init(form: String, archive: String = "tar.gz", seed: Int, namespaces: Int = 3) throws {
        try self.init([
            "--form", form, "--archive", archive, "--seed", String(seed), "--namespaces", String(namespaces),
        ])
    }

    private static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/generate-dump.py").path
}
