import Ember
import Foundation

/// The run's one owner of the learning rate: a per-epoch schedule with its warm-up
/// (`EpochSchedule`), a per-step one when training by steps (`StepSchedule`), one-cycle, or the
/// plateau schedule (rank 0 decides; `RankLoop.decide` gives every rank its rate). The loop tells
/// it where the run stands; it sets the optimizer's rate.
final class LearningRatePolicy {
    let optimizer: Optimizer
    private let byEpoch: EpochSchedule
    private let byStep: StepSchedule
    private let oneCycle: OneCycleLR?
    private let plateau: ReduceLROnPlateau?

    /// - Parameters:
    ///   - totalSteps: optimizer steps of the whole run (one-cycle's span).
    ///   - higherIsBetter: whether the monitored metric improves upwards (the plateau's mode).
    init(config: TrainerConfig, optimizer: Optimizer, totalSteps: Int, higherIsBetter: Bool) {
        self.optimizer = optimizer
        byEpoch = EpochSchedule(config: config)
        byStep = StepSchedule(config: config)
        oneCycle = config.schedule == .onecycle ? OneCycleLR(optimizer: optimizer, maxLR: config.lr, totalSteps: totalSteps) : nil
        plateau = config.schedule == .plateau
            ? ReduceLROnPlateau(optimizer: optimizer, mode: higherIsBetter ? .max : .min, factor: 0.5, patience: 2) : nil
    }

    /// The rate of an epoch's batches (per-epoch schedules).
    func epochBegins(_ epoch: Int) {
        if let lr = byEpoch.learningRate(epoch: epoch) { optimizer.learningRate = lr }
    }

    /// The rate of optimizer step `step` (training by steps).
    func stepBegins(_ step: Int) {
        if let lr = byStep.learningRate(step: step) { optimizer.learningRate = lr }
    }

    /// After an optimizer step (one-cycle moves on).
    func stepEnded() { oneCycle?.step() }

    /// The monitored value of an epoch that ended, on the rank that decides (the plateau's input).
    func epochEnded(monitored value: Double) { plateau?.step(value) }

    /// What a checkpoint keeps: one-cycle's position and the plateau's state.
    var checkpointed: (schedulerEpoch: Int?, plateau: PlateauState?) {
        (oneCycle?.lastEpoch, plateau.map { PlateauState(best: $0.best, badEpochs: $0.badEpochs, cooldown: $0.cooldownCounter) })
    }

    /// Back to a checkpoint's place; the groups' rates are the checkpoint's (`groups[i]["lr"]`).
    func restore(schedulerEpoch: Int?, plateau state: PlateauState?, groups: [[String: Double]]) {
        if let schedulerEpoch { oneCycle?.restore(epoch: schedulerEpoch) }
        for (g, values) in zip(optimizer.paramGroups, groups) { g.learningRate = values["lr"] ?? g.learningRate }
        if let state { plateau?.restore(best: state.best, badEpochs: state.badEpochs, cooldown: state.cooldown) }
    }
}
