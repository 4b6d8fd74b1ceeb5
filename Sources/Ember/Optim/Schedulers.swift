import Foundation

/// The base of epoch/step-based learning-rate schedules, with PyTorch's semantics: constructing a
/// schedule takes its first step (epoch 0); each `step()` advances one epoch and writes the new
/// rates into the optimizer's groups. Rates follow PyTorch's recursive ("chainable") formulas, so
/// values match `torch.optim.lr_scheduler` step for step, also when schedules are chained.
open class LRScheduler {
    public let optimizer: Optimizer
    /// Each group's learning rate when the first schedule was attached (PyTorch's `initial_lr`).
    public let baseLRs: [Double]
    public internal(set) var lastEpoch: Int
    public internal(set) var lastLR: [Double] = []

    public init(optimizer: Optimizer, lastEpoch: Int = -1) {
        self.optimizer = optimizer
        for g in optimizer.paramGroups where g.options["initial_lr"] == nil { g.options["initial_lr"] = g.learningRate }
        baseLRs = optimizer.paramGroups.map { $0["initial_lr"] }
        self.lastEpoch = lastEpoch
        step()
    }

    /// Current rates, one per group.
    var currentLRs: [Double] { optimizer.paramGroups.map(\.learningRate) }

    /// The rates for `lastEpoch`, computed from the current rates (the chainable form).
    open func computeLR() -> [Double] { currentLRs }

    /// The rates for `epoch` from the base rates alone, where PyTorch defines such a form.
    open func closedFormLR(epoch: Int) -> [Double]? { nil }

    /// Advances one epoch, or jumps to `epoch` (using the closed form when there is one).
    public func step(epoch: Int? = nil) {
        let lrs: [Double]
        if let epoch {
            lastEpoch = epoch
            lrs = closedFormLR(epoch: epoch) ?? computeLR()
        } else {
            lastEpoch += 1
            lrs = computeLR()
        }
        for (g, lr) in zip(optimizer.paramGroups, lrs) { g.learningRate = lr }
        lastLR = lrs
    }
}

/// Multiplies the rate by `gamma` every `stepSize` epochs.
public final class StepLR: LRScheduler {
    public let stepSize: Int, gamma: Double
    public init(optimizer: Optimizer, stepSize: Int, gamma: Double = 0.1) {
        self.stepSize = stepSize
        self.gamma = gamma
        super.init(optimizer: optimizer)
    }
    public override func computeLR() -> [Double] {
        lastEpoch == 0 || lastEpoch % stepSize != 0 ? currentLRs : currentLRs.map { $0 * gamma }
    }
    public override func closedFormLR(epoch: Int) -> [Double]? {
        baseLRs.map { $0 * pow(gamma, Double(epoch / stepSize)) }
    }
}

/// Multiplies the rate by `gamma` at each milestone epoch.
public final class MultiStepLR: LRScheduler {
    public let milestones: [Int], gamma: Double
    public init(optimizer: Optimizer, milestones: [Int], gamma: Double = 0.1) {
        self.milestones = milestones.sorted()
        self.gamma = gamma
        super.init(optimizer: optimizer)
    }
    public override func computeLR() -> [Double] {
        let hits = milestones.filter { $0 == lastEpoch }.count
        return hits == 0 ? currentLRs : currentLRs.map { $0 * pow(gamma, Double(hits)) }
    }
    public override func closedFormLR(epoch: Int) -> [Double]? {
        let passed = milestones.filter { $0 <= epoch }.count
        return baseLRs.map { $0 * pow(gamma, Double(passed)) }
    }
}

/// Multiplies the rate by `gamma` every epoch.
public final class ExponentialLR: LRScheduler {
    public let gamma: Double
    public init(optimizer: Optimizer, gamma: Double) {
        self.gamma = gamma
        super.init(optimizer: optimizer)
    }
    public override func computeLR() -> [Double] { lastEpoch == 0 ? currentLRs : currentLRs.map { $0 * gamma } }
    public override func closedFormLR(epoch: Int) -> [Double]? { baseLRs.map { $0 * pow(gamma, Double(epoch)) } }
}

/// Cosine annealing from the base rate to `etaMin` over `tMax` epochs (SGDR without restarts).
public final class CosineAnnealingLR: LRScheduler {
    public let tMax: Int, etaMin: Double
    public init(optimizer: Optimizer, tMax: Int, etaMin: Double = 0) {
        self.tMax = tMax
        self.etaMin = etaMin
        super.init(optimizer: optimizer)
    }
    public override func computeLR() -> [Double] {
        let t = Double(lastEpoch), T = Double(tMax)
        if lastEpoch == 0 { return currentLRs }
        if (lastEpoch - 1 - tMax) % (2 * tMax) == 0 {
            return zip(currentLRs, baseLRs).map { lr, base in lr + (base - etaMin) * (1 - cos(.pi / T)) / 2 }
        }
        return currentLRs.map { lr in
            (1 + cos(.pi * t / T)) / (1 + cos(.pi * (t - 1) / T)) * (lr - etaMin) + etaMin
        }
    }
    public override func closedFormLR(epoch: Int) -> [Double]? {
        baseLRs.map { etaMin + ($0 - etaMin) * (1 + cos(.pi * Double(epoch) / Double(tMax))) / 2 }
    }
}

/// Scales the rate linearly from `startFactor` to `endFactor` over `totalIters` epochs (warm-up).
public final class LinearLR: LRScheduler {
    public let startFactor: Double, endFactor: Double, totalIters: Int
    public init(optimizer: Optimizer, startFactor: Double = 1.0 / 3, endFactor: Double = 1, totalIters: Int = 5) {
        require(startFactor > 0 && startFactor <= 1, "LinearLR startFactor must be in (0, 1], got \(startFactor)")
        self.startFactor = startFactor
        self.endFactor = endFactor
        self.totalIters = totalIters
        super.init(optimizer: optimizer)
    }
    public override func computeLR() -> [Double] {
        if lastEpoch == 0 { return currentLRs.map { $0 * startFactor } }
        if lastEpoch > totalIters { return currentLRs }
        let factor = 1 + (endFactor - startFactor)
            / (Double(totalIters) * startFactor + Double(lastEpoch - 1) * (endFactor - startFactor))
        return currentLRs.map { $0 * factor }
    }
    public override func closedFormLR(epoch: Int) -> [Double]? {
        let f = startFactor + (endFactor - startFactor) * Double(min(totalIters, epoch)) / Double(totalIters)
        return baseLRs.map { $0 * f }
    }
}

/// The one-cycle policy: warm up to `maxLR`, then anneal far below the start, stepped once per
/// batch; momentum (or Adam's β1) cycles the opposite way, as in PyTorch.
public final class OneCycleLR: LRScheduler {
    public enum Anneal: String { case cos, linear }
    public let maxLRs: [Double], totalSteps: Int, pctStart: Double, anneal: Anneal
    public let divFactor: Double, finalDivFactor: Double, threePhase: Bool
    public let cycleMomentum: Bool, baseMomentum: Double, maxMomentum: Double

    public init(optimizer: Optimizer, maxLR: Double, totalSteps: Int, pctStart: Double = 0.3, anneal: Anneal = .cos,
                cycleMomentum: Bool = true, baseMomentum: Double = 0.85, maxMomentum: Double = 0.95,
                divFactor: Double = 25, finalDivFactor: Double = 1e4, threePhase: Bool = false) {
        require(totalSteps > 0, "OneCycleLR needs totalSteps > 0")
        maxLRs = optimizer.paramGroups.map { _ in maxLR }
        self.totalSteps = totalSteps
        self.pctStart = pctStart
        self.anneal = anneal
        self.divFactor = divFactor
        self.finalDivFactor = finalDivFactor
        self.threePhase = threePhase
        self.cycleMomentum = cycleMomentum
        self.baseMomentum = baseMomentum
        self.maxMomentum = maxMomentum
        for g in optimizer.paramGroups {
            let initial = maxLR / divFactor
            g.learningRate = initial
            g.options["initial_lr"] = initial
            g.options["max_lr"] = maxLR
            g.options["min_lr"] = initial / finalDivFactor
            if cycleMomentum { OneCycleLR.setMomentum(g, maxMomentum) }
        }
        super.init(optimizer: optimizer)
    }

    private static func setMomentum(_ g: ParamGroup, _ value: Double) {
        if g.options["beta1"] != nil { g.options["beta1"] = value } else { g.options["momentum"] = value }
    }

    private func interpolate(_ start: Double, _ end: Double, _ pct: Double) -> Double {
        switch anneal {
        case .cos: return end + (start - end) / 2 * (cos(.pi * pct) + 1)
        case .linear: return (end - start) * pct + start
        }
    }

    public override func computeLR() -> [Double] {
        require(lastEpoch <= totalSteps, "OneCycleLR stepped \(lastEpoch) times, more than totalSteps \(totalSteps)")
        let step = Double(lastEpoch), total = Double(totalSteps)
        // (end step, lr from, lr to, momentum from, momentum to) per phase.
        typealias Phase = (end: Double, from: String, to: String, mFrom: Double, mTo: Double)
        let phases: [Phase] = threePhase
            ? [(pctStart * total - 1, "initial_lr", "max_lr", maxMomentum, baseMomentum),
               (2 * pctStart * total - 2, "max_lr", "initial_lr", baseMomentum, maxMomentum),
               (total - 1, "initial_lr", "min_lr", maxMomentum, maxMomentum)]
            : [(pctStart * total - 1, "initial_lr", "max_lr", maxMomentum, baseMomentum),
               (total - 1, "max_lr", "min_lr", baseMomentum, maxMomentum)]
        return optimizer.paramGroups.map { g in
            var start = 0.0
            for (i, phase) in phases.enumerated() {
                if step <= phase.end || i == phases.count - 1 {
                    let pct = (step - start) / (phase.end - start)
                    if cycleMomentum { OneCycleLR.setMomentum(g, interpolate(phase.mFrom, phase.mTo, pct)) }
                    return interpolate(g[phase.from], g[phase.to], pct)
                }
                start = phase.end
            }
            return g.learningRate
        }
    }
}

/// Runs schedules one after another, switching at each milestone epoch (warm-up then cosine, say).
public final class SequentialLR {
    public let optimizer: Optimizer
    public let schedulers: [LRScheduler], milestones: [Int]
    public private(set) var lastEpoch = 0
    public private(set) var lastLR: [Double]

    public init(optimizer: Optimizer, schedulers: [LRScheduler], milestones: [Int]) {
        require(schedulers.count == milestones.count + 1,
                     "SequentialLR needs one more scheduler than milestones, got \(schedulers.count) and \(milestones.count)")
        self.optimizer = optimizer
        self.schedulers = schedulers
        self.milestones = milestones
        // As PyTorch does: back to the initial rates, undo the schedules' construction steps, and
        // let only the first one take its initial step.
        for g in optimizer.paramGroups { g.learningRate = g["initial_lr"] }
        for s in schedulers { s.lastEpoch -= 1 }
        schedulers[0].step()
        lastLR = schedulers[0].lastLR
    }

    public func step() {
        lastEpoch += 1
        let index = milestones.filter { $0 <= lastEpoch }.count
        let scheduler = schedulers[index]
        if index > 0 && milestones[index - 1] == lastEpoch {
            scheduler.step(epoch: 0)
        } else {
            scheduler.step()
        }
        lastLR = scheduler.lastLR
    }
}

/// Divides the rate by `1/factor` when a metric has stopped improving for `patience` epochs.
public final class ReduceLROnPlateau {
    public enum Mode: String { case min, max }
    public enum ThresholdMode: String { case rel, abs }
    public let optimizer: Optimizer
    public let mode: Mode, factor: Double, patience: Int, threshold: Double, thresholdMode: ThresholdMode
    public let cooldown: Int, minLRs: [Double], eps: Double
    public private(set) var best: Double
    public private(set) var badEpochs = 0
    public private(set) var cooldownCounter = 0
    public private(set) var lastEpoch = 0

    public init(optimizer: Optimizer, mode: Mode = .min, factor: Double = 0.1, patience: Int = 10,
                threshold: Double = 1e-4, thresholdMode: ThresholdMode = .rel, cooldown: Int = 0,
                minLR: Double = 0, eps: Double = 1e-8) {
        require(factor < 1, "ReduceLROnPlateau factor must be below 1, got \(factor)")
        self.optimizer = optimizer
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.thresholdMode = thresholdMode
        self.cooldown = cooldown
        self.minLRs = optimizer.paramGroups.map { _ in minLR }
        self.eps = eps
        best = mode == .min ? .infinity : -.infinity
    }

    func isBetter(_ a: Double, than best: Double) -> Bool {
        switch (mode, thresholdMode) {
        case (.min, .rel): return a < best * (1 - threshold)
        case (.min, .abs): return a < best - threshold
        case (.max, .rel): return a > best * (threshold + 1)
        case (.max, .abs): return a > best + threshold
        }
    }

    /// Records one epoch's metric; returns true when the rate was reduced.
    @discardableResult
    public func step(_ metric: Double) -> Bool {
        lastEpoch += 1
        if isBetter(metric, than: best) {
            best = metric
            badEpochs = 0
        } else {
            badEpochs += 1
        }
        if cooldownCounter > 0 {
            cooldownCounter -= 1
            badEpochs = 0
        }
        guard badEpochs > patience else { return false }
        var reduced = false
        for (g, minLR) in zip(optimizer.paramGroups, minLRs) {
            let new = max(g.learningRate * factor, minLR)
            if g.learningRate - new > eps {
                g.learningRate = new
                reduced = true
            }
        }
        cooldownCounter = cooldown
        badEpochs = 0
        return reduced
    }
}

extension LRScheduler {
    /// Puts a schedule back at `epoch` (when resuming; the rates themselves come from the
    /// optimizer's restored groups).
    public func restore(epoch: Int) { lastEpoch = epoch }
}

extension ReduceLROnPlateau {
    /// Restores the plateau detector's state (when resuming).
    public func restore(best: Double, badEpochs: Int, cooldown: Int) {
        self.best = best
        self.badEpochs = badEpochs
        self.cooldownCounter = cooldown
    }
}
