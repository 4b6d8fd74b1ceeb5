import Ember
import EmberDistributed
import Foundation

/// Ordinary data-parallel steps: each rank's shard in whole batches, gradients averaged by
/// `DataParallel` during backward, the update (sharded or not) by `DataParallel.step`, and
/// one small allreduce of the batch's loss and metrics.
final class DataParallelSteps<Task: TrainingTask>: TrainingSteps {
    let parts: StepParts<Task>

    init(_ parts: StepParts<Task>) { self.parts = parts }

    var batchesPerPass: Int {
        let perRank = (parts.train.count + parts.comm.worldSize - 1) / parts.comm.worldSize
        return (perRank + parts.config.batchSize - 1) / parts.config.batchSize
    }

    var positionHoldsOnAnyWorldSize: Bool { false }

    func makeLoader() -> BatchLoader<Task.Batch?> {
        let sampler = DistributedSampler(count: parts.train.count, rank: parts.comm.rank, worldSize: parts.comm.worldSize,
                                         shuffle: true, seed: parts.config.seed)
        return BatchLoader(sampler: sampler, batchSize: parts.config.batchSize, make: { [train = parts.train] in train.batch($0) })
    }

    func forwardBackward(indices: [Int], samples: Task.Batch?, step: Int, synchronize: Bool) throws -> BatchStatistics {
        guard let samples else { fatalError("the loader makes whole batches") }
        let (p, count) = (parts, parts.train.weight(of: indices))
        let forwardBackward = { () throws -> BatchStatistics in
            var log = MetricLog(p.metrics)
            try p.ddp.broadcastBuffersForTraining()
            let loss = p.timeline.measure("forward", "forward") { p.task.trainingStep(model: p.model, batch: samples, log: &log) }
            p.timeline.measure("backward", "backward") { (loss / Float(p.config.gradAccumulation)).backward() }
            var s = BatchStatistics(lossSum: loss.doubleItem() * count, samples: count)
            s.metrics.values = log.values
            return s
        }
        var s = synchronize ? try forwardBackward() : try p.ddp.noSync(forwardBackward)
        p.stopFlags(&s)
        return s
    }

    func update() throws {
        try parts.ddp.step(parts.optimizer, clipNorm: parts.config.clipNorm, clipValue: parts.config.clipValue)
    }

    func totals(_ local: BatchStatistics) throws -> BatchStatistics {
        try parts.timeline.measure("metrics (waiting for every rank)", "sync") {
            let prefix = [local.lossSum, local.samples, local.stopSignal ? 1 : 0, local.stopRequest ? 1 : 0]
            let (t, metrics) = try MetricTotals.reduce(local.metrics.values, parts.metrics, prefix: prefix, comm: parts.comm)
            return BatchStatistics(lossSum: t[0], samples: t[1], stopSignal: t[2] > 0, stopRequest: t[3] > 0, metrics: metrics)
        }
    }

    func evaluate(_ split: TaskData<Task.Batch>) throws -> (loss: Double, metrics: MetricTotals) {
        try SplitEvaluation.run(parts.task, model: parts.model, split: split, comm: parts.comm, batchSize: max(parts.config.batchSize, 256))
    }
}
