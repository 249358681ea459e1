import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawnp`, for tests that start a server or a script in one call and stop or
/// wait for it in another.
///
/// It stands in for Foundation's `Process`, whose `run()` on Linux (Swift 6.3.1) over-reads a buffer while it lists
/// `/proc/self/fd` and now and then crashes the whole test process (swift-corelibs-foundation pull request 5472,
/// merged after 6.3.1). swift-subprocess, the library that replaces `Process`, runs a child inside one async closure,
/// which the synchronous helpers of these suites (``python(_:arguments:input:)``, servers started in an initialiser
/// and stopped later) do not fit; this is the small part of it they need. The child starts with default signal
/// handling and an empty signal mask (the test process ignores SIGTERM, which a child would otherwise inherit), in a
/// process group of its own, with no descriptor of the test process but the three it is given.
package final class ChildProcess: Sendable {
    /// Where one of the child's standard streams goes.
    package enum Stream {
        /// The test process's own.
        case inherit
        /// `/dev/null`.
        case discard
        /// A pipe whose other end is ``standardInput``, ``standardOutput`` or ``standardError``.
        case pipe
        /// The end of the file at the path (created when missing).
        case file(String)
    }

    /// Its process id.
    package let id: pid_t
    /// The writing end of its standard input, when that is a ``Stream/pipe``.
    package let standardInput: FileHandle?
    /// The reading end of its standard output, when that is a ``Stream/pipe``.
    package let standardOutput: FileHandle?
    /// The reading end of its standard error, when that is a ``Stream/pipe``.
    package let standardError: FileHandle?
    /// Its `waitpid` status once it has been reaped.
    private let status = Mutex<Int32?>(nil)

    /// Starts `arguments[0]` (looked up in `PATH`) with `arguments`, in `environment` (the test process's when nil).
    package init(
        _ arguments: [String], environment: [String: String]? = nil, input: Stream = .inherit,
        output: Stream = .inherit, error: Stream = .inherit
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var childEnds: [Int32] = []
        defer { for descriptor in childEnds { close(descriptor) } }
        var parentEnds: [Int32: FileHandle] = [:]
        for (target, stream) in [(Int32(0), input), (1, output), (2, error)] {
            let childEnd: Int32
            switch stream {
            case .inherit: continue
            case .discard: childEnd = open("/dev/null", (target == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC)
            case .file(let path): childEnd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            case .pipe:
                var ends: [Int32] = [-1, -1]
                guard pipe(&ends) == 0 else { throw SpawnFailed(arguments, errno) }
                childEnd = target == 0 ? ends[0] : ends[1]
                parentEnds[target] = FileHandle(fileDescriptor: target == 0 ? ends[1] : ends[0], closeOnDealloc: true)
            }
            guard childEnd >= 0 else { throw SpawnFailed(arguments, errno) }
            childEnds.append(childEnd)
            posix_spawn_file_actions_adddup2(&actions, childEnd, target)
        }
        guard let addCloseFrom = Self.addCloseFrom else { throw SpawnFailed(arguments, ENOSYS) }
        _ = addCloseFrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        let environment = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var argv = arguments.map { strdup($0) } + [nil]
        var envp = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var id = pid_t()
        let result = posix_spawnp(&id, arguments[0], &actions, &attributes, &argv, &envp)
        guard result == 0 else { throw SpawnFailed(arguments, result) }
        self.id = id
        standardInput = parentEnds[0]
        standardOutput = parentEnds[1]
        standardError = parentEnds[2]
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which its Swift module leaves out (it is
    /// declared for _GNU_SOURCE only). Every child closes every descriptor past the three it is given, so no child
    /// holds another's pipe open.
    private static let addCloseFrom:
        (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
            dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
                unsafeBitCast(
                    $0, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
            }
        }()

    deinit {
        if isRunning {
            signal(SIGKILL)
            _ = waitUntilExit()
        }
    }

    /// Sends `signal` to the child.
    package func signal(_ signal: Int32) { kill(id, signal) }

    /// False once the child has exited (and been reaped).
    package var isRunning: Bool { reap(blocking: false) == nil }

    /// Blocks until the child exits; returns ``exitStatus``.
    @discardableResult
    package func waitUntilExit() -> Int32 {
        reap(blocking: true)
        return exitStatus ?? -1
    }

    /// Its exit code, or 128 + the signal that ended it (as a shell reports it); nil while it runs.
    package var exitStatus: Int32? {
        guard let status = reap(blocking: false) else { return nil }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// The child's status, reaping it when it has exited (and waiting for that when `blocking`).
    @discardableResult
    private func reap(blocking: Bool) -> Int32? {
        status.withLock { status in
            guard status == nil else { return status }
            var raw: Int32 = 0
            var reaped: pid_t
            repeat { reaped = waitpid(id, &raw, blocking ? 0 : WNOHANG) } while reaped < 0 && errno == EINTR
            if reaped == id { status = raw }
            return status
        }
    }
}

/// A child process could not be started.
package struct SpawnFailed: Error, CustomStringConvertible {
    /// The command line.
    package var arguments: [String]
    /// The `errno` of the failure.
    package var code: Int32

    init(_ arguments: [String], _ code: Int32) {
        self.arguments = arguments
        self.code = code
    }

    package var description: String {
        "could not start \(arguments.joined(separator: " ")): \(String(cString: strerror(code)))"
    }
}
