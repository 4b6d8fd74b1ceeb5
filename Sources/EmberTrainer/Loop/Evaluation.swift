import Ember
import EmberDistributed
import Foundation

/// A split's loss and metrics over the ranks: each rank evaluates its share (no sample twice),
/// and sums and counts are combined exactly. What the loop validates with, and what a task's
/// program evaluates a finished run with.
enum SplitEvaluation {
    static func run<Task: TrainingTask>(_ task: Task, model: Task.Model, split: TaskData<Task.Batch>, comm: Communicator,
                                        batchSize: Int) throws -> (loss: Double, metrics: MetricTotals) {
        let sampler = DistributedEvalSampler(count: split.count, rank: comm.rank, worldSize: comm.worldSize)
        var lossSum = 0.0, samples = 0.0
        var log = MetricLog(task.metrics)
        noGrad {
            for (indices, batch) in BatchLoader(sampler: sampler, batchSize: batchSize, make: split.batch) {
                let loss = task.evaluationStep(model: model, batch: batch, log: &log)
                let weight = split.weight(of: indices)
                lossSum += loss.doubleItem() * weight
                samples += weight
            }
        }
        let (p, totals) = try MetricTotals.reduce(log.values, task.metrics, prefix: [lossSum, samples], comm: comm)
        return (p[1] > 0 ? p[0] / p[1] : .nan, totals)
    }
}

extension Trainer {
    /// A task's validation and test loss and metrics with a run's weights (`loadModel`), like
    /// Lightning's `trainer.validate` / `trainer.test`: one line per split (`val: loss 0.4123,
    /// accuracy 0.9120`), exact over the ranks of `comm` (one process by default).
    public static func evaluate<Task: TrainingTask>(_ task: Task, checkpoint path: String, splits: [String] = ["val", "test"],
                                                    comm: Communicator = SingleProcessCommunicator()) throws -> [String] {
        let model = try loadModel(task, from: path)
        var lines: [String] = []
        for name in splits {
            guard let data = try name == "val" ? task.validationData() : task.testData() else {
                lines.append("\(name): (the task has no \(name == "val" ? "validation" : "test") data)")
                continue
            }
            let (loss, totals) = try SplitEvaluation.run(task, model: model, split: data, comm: comm, batchSize: 256)
            let metrics = task.metrics.compactMap { m in totals.value(m).map { String(format: ", %@ %.4f", m.name, $0) } }.joined()
            lines.append(String(format: "%@: loss %.4f", name, loss) + metrics)
        }
        return lines
    }
}
