@testable import BinderyHTTP
import Glibc

/// CPU time this process has used (user + system), for tests that prove a loop does not spin.
/// The server runs in the test process, so its threads are counted here.
enum ProcessCPU {
    /// Seconds of CPU used by every thread of this process so far.
    static var seconds: Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    /// What a window of about a second costs in CPU and in event-loop wakeups while the test
    /// thread sleeps. The window is an observation period, not a wait for an outcome: a
    /// spinning loop burns CPU and wakes thousands of times in it; an idle one wakes a few
    /// times on its 250 ms timer.
    static func observe(_ server: HTTPServer, microseconds window: useconds_t = 1_000_000) -> (cpu: Double, wakeups: Int) {
        let cpu = seconds, wakeups = server.loopWakeups
        usleep(window)
        return (seconds - cpu, server.loopWakeups - wakeups)
    }
}
