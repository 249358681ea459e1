import Dispatch

/// Runs the jobs of the tasks that prefer it on Dispatch's background threads instead of Swift's cooperative pool.
///
/// Ingest is long and busy; requests are short. With ingest on these threads the cooperative pool (where request
/// handlers run) is never taken by an ingest's parsing, and the operating system schedules these threads after the
/// request path's (on Linux libdispatch gives background threads a nice of 10). Neither Swift nor NIO ships a task
/// executor with a lower priority, hence these few lines.
package final class BackgroundExecutor: TaskExecutor {
    /// The one instance, alive as long as the process: no task can outlive the executor it prefers.
    package static let shared = BackgroundExecutor()

    private let queue = DispatchQueue(label: "kubin.background", qos: .background, attributes: .concurrent)

    private init() {}

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
