import Glibc

/// The process's open-file limit (RLIMIT_NOFILE), which bounds how many connections fit:
/// every connection holds one descriptor.
enum DescriptorLimit {
    /// Descriptors kept for everything that is not a client connection: the store's files,
    /// listeners, epoll and eventfds, the kernel executor's devices, logs.
    static let reserve = 64

    /// Raises the soft limit to the hard limit. Returns the soft limit in force afterwards,
    /// and why it could not be raised, if it could not.
    static func raiseToHardLimit() -> (descriptors: Int, failure: SocketError?) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            return (Int.max, SocketError.last("getrlimit", "RLIMIT_NOFILE"))
        }
        var failure: SocketError?
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                limit = raised
            } else {
                failure = SocketError.last("setrlimit", "RLIMIT_NOFILE soft limit \(limit.rlim_cur) to \(limit.rlim_max)")
            }
        }
        // RLIM_INFINITY is all ones.
        return (limit.rlim_cur == rlim_t.max ? Int.max : Int(clamping: limit.rlim_cur), failure)
    }

    /// The most connections that fit under `descriptorLimit` descriptors beside the reserve
    /// and the overflow connections that get a 503; never above `configured`, never below one.
    static func connectionCap(configured: Int, descriptorLimit: Int) -> Int {
        let room = descriptorLimit.subtractingReportingOverflow(reserve + HTTPServer.overflowSlots)
        return max(1, min(configured, room.overflow ? configured : room.partialValue))
    }
}
