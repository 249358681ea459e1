import Foundation
import Testing

@testable import Orchestrators

#if os(Linux)
    @Suite struct BackgroundExecutorTests {
        /// The nice value of the thread running the caller: field 19 of its `/proc` stat line, the 17th after the name.
        private static func threadNice() -> Int32 {
            let line = (try? String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8)) ?? ""
            let fields = line.split(separator: ")").last?.split(separator: " ") ?? []
            return fields.count > 16 ? Int32(fields[16]) ?? -100 : -100
        }

        /// What keeps ingest from starving requests: its tasks, and their children, run on threads the kernel schedules
        /// after the cooperative pool's.
        @Test func runsItsTasksAndTheirChildrenOnLowerPriorityThreads() async {
            let outside = Self.threadNice()
            let (inside, child) = await withTaskExecutorPreference(BackgroundExecutor.shared) {
                let inside = Self.threadNice()
                let child = await withTaskGroup(of: Int32.self) { group in
                    group.addTask { Self.threadNice() }
                    return await group.next() ?? outside
                }
                return (inside, child)
            }
            #expect(inside > outside)
            #expect(child == inside)
        }
    }
#endif
