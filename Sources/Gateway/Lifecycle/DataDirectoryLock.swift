#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An exclusive `flock` on `<data dir>/.lock`, held while a gateway uses the directory.
///
/// Two instances on one data directory would write the same SQLite file, and the second would empty the first's
/// staging area while uploads are in it; the second one refuses to start instead.
struct DataDirectoryLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock, or throws ``StartupError`` when another process holds it.
    init(directory: String) throws(StartupError) {
        let path = directory + "/.lock"
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw StartupError("cannot open the lock file \(path): errno \(errno)")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw StartupError(
                "another kubin-gateway is using the data directory \(directory); give each instance its own "
                    + "(KUBIN_DATA_DIR or --data-dir)")
        }
        self.descriptor = descriptor
    }

    /// Gives the lock up.
    func release() { close(descriptor) }
}

/// Why the gateway could not start, for the operator.
package struct StartupError: Error, Sendable, CustomStringConvertible {
    /// What went wrong and what to do.
    package let description: String

    init(_ description: String) { self.description = description }
}
