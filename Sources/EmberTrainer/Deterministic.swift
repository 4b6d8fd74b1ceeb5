@_spi(Checks) import Ember
import EmberDistributed
import Foundation

/// `--deterministic`: a run whose weights, optimizer state and metrics do not depend on how many
/// ranks ran it. Every global batch (the same on any world size: one permutation per epoch, cut
/// in order) is split into `M` micro-batches; rank r computes micro-batches r·M/W ..< (r+1)·M/W,
/// each exactly as any rank would (same shapes, one BLAS thread, dropout drawn from a generator
/// seeded by (seed, step, micro-batch)). Gradients are added in micro-batch order (`DeterministicGradients`
/// in EmberDistributed).
/// Losses, metrics and batch-norm running statistics are gathered per micro-batch and combined
/// in micro-batch order. Every rank then takes the same optimizer step.
struct DeterministicPlan {
    let globalBatch: Int, microBatch: Int, worldSize: Int, rank: Int
    var microBatches: Int { globalBatch / microBatch }
    var perRank: Int { microBatches / worldSize }
    /// The global index of this rank's first micro-batch of each step.
    var firstMicroBatch: Int { rank * perRank }

    init(_ c: TrainerConfig, rank: Int, worldSize: Int) throws {
        let g = c.globalBatchSize ?? c.batchSize
        let m = c.microBatchSize ?? [12, 4, 2].first { g % $0 == 0 }.map { g / $0 } ?? g
        let count = g / m
        guard count % worldSize == 0 else {
            let fits = (1...count).filter { count % $0 == 0 }.map(String.init).joined(separator: ", ")
            throw ConfigError("--deterministic: \(count) micro-batches of \(m) (global batch \(g)) cannot be shared by \(worldSize) ranks; use \(fits) ranks, or another --micro-batch-size")
        }
        (globalBatch, microBatch, self.worldSize, self.rank) = (g, m, worldSize, rank)
    }

    /// The dropout seed of micro-batch `index` of step `step`.
    static func dropoutSeed(_ seed: UInt64, step: Int, index: Int) -> UInt64 {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(truncatingIfNeeded: step + 1) &+ 0xD1B5_4A32_D192_ED03 &* UInt64(truncatingIfNeeded: index + 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Rank r's share of fixed global batches: every rank draws the same permutation (seed,
/// epoch), cuts it into global batches (the last partial one dropped), and takes the run of
/// micro-batches `plan` gives it from each.
struct MicroBatchSampler: Sampler {
    let datasetCount: Int, plan: DeterministicPlan, seed: UInt64
    private(set) var epoch = 0

    var count: Int { datasetCount / plan.globalBatch * plan.perRank * plan.microBatch }

    func indices() -> [Int] {
        var sampler = RandomSampler(count: datasetCount, seed: seed)
        sampler.setEpoch(epoch)
        let order = sampler.indices()
        var mine: [Int] = []
        for b in 0..<(datasetCount / plan.globalBatch) {
            let start = b * plan.globalBatch + plan.firstMicroBatch * plan.microBatch
            mine += order[start..<(start + plan.perRank * plan.microBatch)]
        }
        return mine
    }

    mutating func setEpoch(_ epoch: Int) { self.epoch = epoch }
}

/// Per-micro-batch values (losses, metrics) combined in micro-batch order. A row is
/// `[loss sum, weight, value, count (per metric)…]`.
enum MicroBatchRows {
    /// Every rank's rows (each rank's a contiguous run), in micro-batch order.
    static func gathered(_ rows: [[Double]], width: Int, comm: Communicator) throws -> [[Double]] {
        let all = try comm.allgather(rows.flatMap { $0 }).flatMap { $0 }
        return stride(from: 0, to: all.count, by: max(width, 1)).map { Array(all[$0..<($0 + width)]) }
    }

    /// The rows combined in their order: sums of losses, weights and `.mean`/`.sum` metrics,
    /// extremes of `.max`/`.min` ones.
    static func combine(_ rows: [[Double]], metrics: [Metric]) -> (lossSum: Double, weight: Double, metrics: MetricTotals) {
        var lossSum = 0.0, weight = 0.0
        var totals = MetricTotals()
        for row in rows {
            lossSum += row[0]
            weight += row[1]
            var values: [String: (value: Double, count: Double)] = [:]
            for (i, m) in metrics.enumerated() where row[3 + 2 * i] > 0 { values[m.name] = (row[2 + 2 * i], row[3 + 2 * i]) }
            totals.add(values, metrics)
        }
        return (lossSum, weight, totals)
    }

    /// One row from a step's or an evaluation's loss and metric log.
    static func row(loss: Double, weight: Double, log: MetricLog, metrics: [Metric]) -> [Double] {
        var row = [loss * weight, weight]
        for m in metrics { let v = log.values[m.name]; row += [v?.value ?? 0, v?.count ?? 0] }
        return row
    }
}

extension RankLoop {
    /// The batch-norm layers whose running statistics a deterministic step combines.
    var batchNorms: [BatchNorm] { model.namedModules().compactMap { $0.1 as? BatchNorm }.filter { $0.runningMean != nil } }

    /// One deterministic step's forward and backward: this rank's micro-batches of the global
    /// batch, their gradients added in micro-batch order over every rank into each `.grad`, and
    /// the global statistics (the same bits on every world size).
    func deterministicBatch(indices: [Int], plan: DeterministicPlan) throws -> BatchStatistics {
        let norms = batchNorms
        let start = norms.map { ($0.runningMean!.clone(), $0.runningVar!.clone(), $0.numBatchesTracked?.clone()) }
        var rows: [[Double]] = []
        var normRows: [[Double]] = []
        for k in 0..<plan.perRank {
            let chunk = Array(indices[(k * plan.microBatch)..<((k + 1) * plan.microBatch)])
            dropoutGenerator.manualSeed(DeterministicPlan.dropoutSeed(config.seed, step: globalStep, index: plan.firstMicroBatch + k))
            // Every micro-batch starts from the step's running statistics; they are combined below.
            for (bn, s) in zip(norms, start) { noGrad { bn.runningMean!.copy_(s.0); bn.runningVar!.copy_(s.1) } }
            var log = MetricLog(metrics)
            let loss = try exactGradients!.microBatch(k) { () -> Tensor in
                let loss = task.trainingStep(model: model, batch: train.batch(chunk), log: &log)
                loss.backward()
                return loss
            }
            rows.append(MicroBatchRows.row(loss: loss.doubleItem(), weight: train.weight(of: chunk), log: log, metrics: metrics))
            normRows.append(norms.flatMap { $0.runningMean!.doubleScalars + $0.runningVar!.doubleScalars })
        }
        try exactGradients!.reduce(microBatches: plan.microBatches)
        try combineRunningStatistics(norms, start: start, rows: normRows, plan: plan)
        // Losses and metrics: per micro-batch, summed in micro-batch order.
        let c = MicroBatchRows.combine(try MicroBatchRows.gathered(rows, width: 2 + 2 * metrics.count, comm: comm), metrics: metrics)
        let flags = try comm.allreduceMax([StopSignal.received != 0 ? 1 : 0, context.stopReason != nil ? 1 : 0])
        return BatchStatistics(lossSum: c.lossSum, samples: c.weight, stopSignal: flags[0] > 0, stopRequest: flags[1] > 0, metrics: c.metrics)
    }

    /// Running statistics as if the micro-batches had gone through one after another: each
    /// micro-batch's update `r_k - (1 - momentum)·r_start` (from the step's start) applied in
    /// micro-batch order, identically on every rank.
    private func combineRunningStatistics(_ norms: [BatchNorm], start: [(Tensor, Tensor, Tensor?)], rows: [[Double]],
                                          plan: DeterministicPlan) throws {
        guard !norms.isEmpty else { return }
        let width = rows.first?.count ?? 0
        let all = try comm.allgather(rows.flatMap { $0 }).flatMap { $0 }
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

    /// Loss and metrics of a split in fixed chunks of 256 samples, whoever evaluates them,
    /// gathered and summed in chunk order: the same bits on every world size.
    func deterministicEvaluate(_ split: TaskData<Task.Batch>) throws -> (loss: Double, metrics: MetricTotals) {
        model.eval()
        defer { model.train() }
        let chunk = 256
        let chunks = (split.count + chunk - 1) / chunk
        let width = 2 + 2 * metrics.count
        var rows: [[Double]] = []
        // Rank r takes every world-th chunk; rows are gathered per rank, so order them by chunk.
        let mine = Array(stride(from: comm.rank, to: chunks, by: comm.worldSize))
        let most = (chunks + comm.worldSize - 1) / comm.worldSize
        noGrad {
            for c in mine {
                let indices = Array((c * chunk)..<min(split.count, (c + 1) * chunk))
                var log = MetricLog(metrics)
                let loss = task.evaluationStep(model: model, batch: split.batch(indices), log: &log)
                rows.append(MicroBatchRows.row(loss: loss.doubleItem(), weight: split.weight(of: indices), log: log, metrics: metrics))
            }
        }
        // Pad to equal shares (allgather needs them); padding rows are never read.
        while rows.count < most { rows.append([Double](repeating: 0, count: width)) }
        let gathered = try comm.allgather(rows.flatMap { $0 })
        let ordered = (0..<chunks).map { c -> [Double] in
            let (r, k) = (c % comm.worldSize, c / comm.worldSize)
            return Array(gathered[r][(k * width)..<((k + 1) * width)])
        }
        let c = MicroBatchRows.combine(ordered, metrics: metrics)
        return (c.weight > 0 ? c.lossSum / c.weight : .nan, c.metrics)
    }
}
