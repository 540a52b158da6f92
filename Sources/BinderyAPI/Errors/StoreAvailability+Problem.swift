import BinderyStore

extension StoreAvailability {
    /// 503 `store-unavailable` with `Retry-After`, when the store cannot write right now.
    static func problem(for error: any Error) -> APIError? {
        guard let reason = unavailableReason(error) else { return nil }
        var problem = APIError(status: 503, type: "store-unavailable", detail: "cannot store the change now: \(reason); retry later")
        problem.retryAfterSeconds = 5
        return problem
    }
}
