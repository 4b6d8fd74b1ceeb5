import Foundation

/// The one place that decides whether a run stops before its last step, and why: divergence
/// (a non-finite batch loss), a signal, a callback's request (both honoured at an optimizer step
/// or an epoch's end, once every rank agrees), and early stopping on the monitored metric (rank 0
/// keeps the best value and counts epochs without improvement; both are checkpointed). The
/// run's length itself (epochs, `maxSteps`) ends the loop by its count.
struct StopPolicy {
    let monitor: String, minDelta: Double, patience: Int?, higherIsBetter: Bool
    /// The best value of the monitored metric so far, and the epochs since it.
    var best: Double?
    var epochsWithoutImprovement = 0

    init(config: TrainerConfig, higherIsBetter: Bool) {
        (monitor, minDelta, patience, self.higherIsBetter) = (config.monitor, config.minDelta, config.patience, higherIsBetter)
    }

    /// After any batch, from its global totals: a loss that is not finite ends the run at once.
    func divergence(_ totals: BatchStatistics, step: Int) -> StopReason? {
        let loss = totals.lossSum / max(totals.samples, 1)
        return loss.isFinite ? nil : .diverged(loss: loss, step: step)
    }

    /// After a batch that every rank agrees asked to stop (a signal or a callback's request):
    /// honoured at an optimizer step before the epoch's last batch (the epoch's end handles that one).
    func atBatchEnd(_ totals: BatchStatistics, boundary: Bool, last: Bool, request: () -> String) -> StopReason? {
        guard (totals.stopSignal || totals.stopRequest) && boundary && !last else { return nil }
        return totals.stopSignal ? .interrupted : .requested(request())
    }

    /// Rank 0, an epoch's monitored value: whether it improved, and whether patience ran out.
    mutating func observe(_ value: Double) -> Bool {
        let improved = best.map { higherIsBetter ? value > $0 + minDelta : value < $0 - minDelta } ?? true
        if improved {
            best = value
            epochsWithoutImprovement = 0
        } else {
            epochsWithoutImprovement += 1
        }
        return patience.map { epochsWithoutImprovement > $0 } ?? false
    }

    /// At an epoch's end, from what every rank agreed on: a signal first, then early stopping,
    /// then a callback's request.
    func afterEpoch(signal: Bool, earlyStopping: Bool, requested: Bool, request: () -> String) -> StopReason? {
        if signal { return .interrupted }
        if earlyStopping { return .earlyStopping(monitor: monitor, minDelta: minDelta, patience: patience ?? 0) }
        return requested ? .requested(request()) : nil
    }
}
