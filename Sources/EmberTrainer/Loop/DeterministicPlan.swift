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
