@_spi(Checks) import Ember
import EmberDistributed
import Foundation

/// `--deterministic` steps (`DeterministicPlan` says how a global batch splits): each rank runs
/// its micro-batches of every global batch, their gradients are added in micro-batch order over
/// every rank (`DeterministicGradients`), losses, metrics and batch-norm statistics are gathered
/// per micro-batch and combined in that order, and every rank takes the same update. The same
/// bits on any world size.
final class DeterministicSteps<Task: TrainingTask>: TrainingSteps {
    let parts: StepParts<Task>
    let plan: DeterministicPlan
    let exactGradients: DeterministicGradients

    init(_ parts: StepParts<Task>, plan: DeterministicPlan) throws {
        self.parts = parts
        self.plan = plan
        exactGradients = try parts.ddp.deterministicGradients()
    }

    var batchesPerPass: Int { parts.train.count / plan.globalBatch }

    /// Global batches are counted alike on every world size.
    var positionHoldsOnAnyWorldSize: Bool { true }

    /// Only the indices of this rank's micro-batches: the step gathers each micro-batch itself.
    func makeLoader() -> BatchLoader<Task.Batch?> {
        BatchLoader(sampler: MicroBatchSampler(datasetCount: parts.train.count, plan: plan, seed: parts.config.seed),
                    batchSize: plan.perRank * plan.microBatch, make: { _ in nil })
    }

    /// The batch-norm layers whose running statistics a step combines.
    var batchNorms: [BatchNorm] { parts.model.namedModules().compactMap { $0.1 as? BatchNorm }.filter { $0.runningMean != nil } }

    /// This rank's micro-batches of the global batch, their gradients added in micro-batch order
    /// over every rank into each `.grad`, and the global statistics.
    func forwardBackward(indices: [Int], samples: Task.Batch?, step: Int, synchronize: Bool) throws -> BatchStatistics {
        try parts.timeline.measure("deterministic step", "step") { try microBatches(indices, step: step) }
    }

    private func microBatches(_ indices: [Int], step: Int) throws -> BatchStatistics {
        let p = parts, norms = batchNorms
        let start = norms.map { ($0.runningMean!.clone(), $0.runningVar!.clone(), $0.numBatchesTracked?.clone()) }
        var rows: [[Double]] = [], normRows: [[Double]] = []
        for k in 0..<plan.perRank {
            let chunk = Array(indices[(k * plan.microBatch)..<((k + 1) * plan.microBatch)])
            p.dropoutGenerator.manualSeed(DeterministicPlan.dropoutSeed(p.config.seed, step: step, index: plan.firstMicroBatch + k))
            // Every micro-batch starts from the step's running statistics; they are combined below.
            for (bn, s) in zip(norms, start) { noGrad { bn.runningMean!.copy_(s.0); bn.runningVar!.copy_(s.1) } }
            var log = MetricLog(p.metrics)
            let loss = try exactGradients.microBatch(k) { () -> Tensor in
                let loss = p.task.trainingStep(model: p.model, batch: p.train.batch(chunk), log: &log)
                loss.backward()
                return loss
            }
            rows.append(MicroBatchRows.row(loss: loss.doubleItem(), weight: p.train.weight(of: chunk), log: log, metrics: p.metrics))
            normRows.append(norms.flatMap { $0.runningMean!.doubleScalars + $0.runningVar!.doubleScalars })
        }
        try exactGradients.reduce(microBatches: plan.microBatches)
        try combineRunningStatistics(norms, start: start, rows: normRows)
        // Losses and metrics: per micro-batch, summed in micro-batch order.
        let c = MicroBatchRows.combine(try MicroBatchRows.gathered(rows, width: 2 + 2 * p.metrics.count, comm: p.comm), metrics: p.metrics)
        var local = BatchStatistics()
        p.stopFlags(&local)
        let flags = try p.comm.allreduceMax([local.stopSignal ? 1 : 0, local.stopRequest ? 1 : 0])
        return BatchStatistics(lossSum: c.lossSum, samples: c.weight, stopSignal: flags[0] > 0, stopRequest: flags[1] > 0, metrics: c.metrics)
    }

    /// Running statistics as if the micro-batches had gone through one after another: each
    /// micro-batch's update `r_k - (1 - momentum)·r_start` (from the step's start) applied in
    /// micro-batch order, identically on every rank.
    private func combineRunningStatistics(_ norms: [BatchNorm], start: [(Tensor, Tensor, Tensor?)], rows: [[Double]]) throws {
        guard !norms.isEmpty else { return }
        let width = rows.first?.count ?? 0
        let all = try parts.comm.allgather(rows.flatMap { $0 }).flatMap { $0 }
        var offset = 0
        for (bn, s) in zip(norms, start) {
            let c = bn.numFeatures, keep = 1 - bn.momentum
            var mean = s.0.doubleScalars, variance = s.1.doubleScalars
            let startMean = mean, startVar = variance
            for k in 0..<plan.microBatches {
                let row = Array(all[(k * width)..<((k + 1) * width)])
                for j in 0..<c {
                    mean[j] = keep * mean[j] + (row[offset + j] - keep * startMean[j])
                    variance[j] = keep * variance[j] + (row[offset + c + j] - keep * startVar[j])
                }
            }
            offset += 2 * c
            noGrad {
                bn.runningMean!.copy_(Tensor(mean, shape: [c], dtype: .float64).to(bn.runningMean!.dtype))
                bn.runningVar!.copy_(Tensor(variance, shape: [c], dtype: .float64).to(bn.runningVar!.dtype))
                if let n = bn.numBatchesTracked, let n0 = s.2 { n.copy_(n0 + Double(plan.microBatches)) }
            }
        }
    }

    /// Every rank takes the same step on the summed gradients.
    func update() throws {
        let params = parts.model.parameters()
        if let c = parts.config.clipValue { GradClip.clipValue(params, clipValue: c) }
        if let c = parts.config.clipNorm { GradClip.clipNorm(params, maxNorm: c) }
        parts.optimizer.step()
    }

    /// Already combined over the ranks, in micro-batch order.
    func totals(_ local: BatchStatistics) throws -> BatchStatistics { local }

    /// A split in fixed chunks of 256 samples, whoever evaluates them, gathered and summed in
    /// chunk order: the same bits on every world size.
    func evaluate(_ split: TaskData<Task.Batch>) throws -> (loss: Double, metrics: MetricTotals) {
        let (p, chunk) = (parts, 256)
        let chunks = (split.count + chunk - 1) / chunk, width = 2 + 2 * p.metrics.count
        var rows: [[Double]] = []
        // Rank r takes every world-th chunk; rows are gathered per rank, so order them by chunk.
        let mine = Array(stride(from: p.comm.rank, to: chunks, by: p.comm.worldSize))
        let most = (chunks + p.comm.worldSize - 1) / p.comm.worldSize
        noGrad {
            for c in mine {
                let indices = Array((c * chunk)..<min(split.count, (c + 1) * chunk))
                var log = MetricLog(p.metrics)
                let loss = p.task.evaluationStep(model: p.model, batch: split.batch(indices), log: &log)
                rows.append(MicroBatchRows.row(loss: loss.doubleItem(), weight: split.weight(of: indices), log: log, metrics: p.metrics))
            }
        }
        // Pad to equal shares (allgather needs them); padding rows are never read.
        while rows.count < most { rows.append([Double](repeating: 0, count: width)) }
        let gathered = try p.comm.allgather(rows.flatMap { $0 })
        let ordered = (0..<chunks).map { c -> [Double] in
            let (r, k) = (c % p.comm.worldSize, c / p.comm.worldSize)
            return Array(gathered[r][(k * width)..<((k + 1) * width)])
        }
        let c = MicroBatchRows.combine(ordered, metrics: p.metrics)
        return (c.weight > 0 ? c.lossSum / c.weight : .nan, c.metrics)
    }
}
