import Ember
import EmberDistributed
import Foundation
import Logging
/// The per-epoch learning rate of `--schedule step|cosine|none` with an optional linear warm-up,
/// from the library's schedules (`LinearLR`, then `StepLR` or `CosineAnnealingLR`) in their closed
/// forms, so a resumed run needs only the epoch number. The schedules drive an optimizer of their
/// own with no parameters; the trainer copies the rate.
struct EpochSchedule {
    let kind: ScheduleName, base: Double, warmup: Int, bySteps: Bool
    private let warmupSchedule: LinearLR?
    private let main: LRScheduler?

    init(config: TrainerConfig) {
        kind = config.schedule
        bySteps = config.maxSteps != nil
        base = config.lr
        warmup = config.warmupEpochs
        let shadow = { Optimizer(paramGroups: [ParamGroup(params: [], learningRate: config.lr)]) }
        let span = max(1, config.epochs - config.warmupEpochs)
        warmupSchedule = warmup > 0 ? LinearLR(optimizer: shadow(), startFactor: 0.1, endFactor: 1, totalIters: warmup) : nil
        switch kind {
        case .step: main = StepLR(optimizer: shadow(), stepSize: max(1, span / 3), gamma: 0.1)
        case .cosine: main = CosineAnnealingLR(optimizer: shadow(), tMax: span)
        default: main = nil
        }
    }

    /// nil when another schedule (one-cycle, plateau, or any when training by steps) owns the
    /// rate, or none does (`none` after any warm-up: the rate is the options' `lr` unless a
    /// callback changes it).
    func learningRate(epoch: Int) -> Double? {
        guard [.none, .step, .cosine].contains(kind) && !bySteps else { return nil }
        if epoch < warmup, let warmupSchedule { return warmupSchedule.closedFormLR(epoch: epoch)![0] }
        if epoch == warmup && warmup > 0 && main == nil { return base }
        return main?.closedFormLR(epoch: epoch - warmup)![0]
    }
}

/// Training by steps (`maxSteps`): the learning rate of each optimizer step, as nanoGPT's
/// `get_lr`: a linear warm-up `lr·(s+1)/(w+1)` over `warmupSteps`, then `cosine` from `lr`
/// down to `minLr` at the last step (nanoGPT reaches it one step later), `step` (÷10 at each third) or `none` (constant). One-cycle
/// and plateau keep their own.
struct StepSchedule {
    let kind: ScheduleName, lr: Double, minLr: Double, warmup: Int, total: Int?

    init(config: TrainerConfig) {
        kind = config.schedule
        lr = config.lr
        minLr = config.minLr ?? config.lr / 10
        warmup = config.warmupSteps
        total = config.maxSteps
    }

    /// The rate of step `s` (0-based), nil when not training by steps or another schedule owns it.
    func learningRate(step s: Int) -> Double? {
        guard let total, [.none, .step, .cosine].contains(kind) else { return nil }
        if s < warmup { return lr * Double(s + 1) / Double(warmup + 1) }
        // The cosine reaches `minLr` at the last step (total - 1).
        let span = max(1, total - 1 - warmup), into = Double(min(s - warmup, span)) / Double(span)
        switch kind {
        case .cosine: return minLr + 0.5 * (1 + cos(Double.pi * into)) * (lr - minLr)
        case .step: return lr * pow(0.1, Double(min(2, Int(into * 3))))
        default: return lr
        }
    }
}
