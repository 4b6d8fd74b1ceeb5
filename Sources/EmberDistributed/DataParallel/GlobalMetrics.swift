import Ember

/// Exact global metrics from per-rank sums and counts.
public struct GlobalMetrics {
    public let communicator: Communicator
    public init(communicator: Communicator) { self.communicator = communicator }

    /// Sums `(lossSum, correct, count)` over ranks and returns the global mean loss and accuracy.
    public func reduce(lossSum: Double, correct: Double, count: Double) throws -> (loss: Double, accuracy: Double, count: Double) {
        let total = try communicator.allreduceSum([lossSum, correct, count])
        guard total[2] > 0 else { return (.nan, .nan, 0) }
        return (total[0] / total[2], total[1] / total[2], total[2])
    }
}
