import Ember
import EmberDistributed
import Foundation

/// How one rank turns its batches into gradients, updates and global statistics: the part of
/// the loop that differs between ordinary data-parallel training (`DataParallelSteps`) and
/// `--deterministic` (`DeterministicSteps`). The loop calls, per batch: `forwardBackward`, then
/// `update` at an accumulation boundary, then `totals`; per split to evaluate, `evaluate`.
protocol TrainingSteps<Task>: AnyObject {
    associatedtype Task: TrainingTask
    /// Batches of one pass over the training data, per rank.
    var batchesPerPass: Int { get }
    /// Whether a checkpoint's place in the epoch (batches done) holds on any world size.
    var positionHoldsOnAnyWorldSize: Bool { get }
    /// This rank's batches: whole batches, or only their indices when the step gathers them itself.
    func makeLoader() -> BatchLoader<Task.Batch?>
    /// Forward and backward of one batch at optimizer step `step`; `synchronize` is false inside
    /// an accumulation. Returns this rank's statistics (or already the global ones).
    func forwardBackward(indices: [Int], samples: Task.Batch?, step: Int, synchronize: Bool) throws -> BatchStatistics
    /// Clipping and the optimizer step on the gradients every rank agrees on.
    func update() throws
    /// The batch's statistics over every rank (one small collective, or none when done already).
    func totals(_ local: BatchStatistics) throws -> BatchStatistics
    /// Global loss and metrics of a split; no sample counted twice.
    func evaluate(_ split: TaskData<Task.Batch>) throws -> (loss: Double, metrics: MetricTotals)
}

/// What a step works on, shared with the loop: the task, its model and data, the rank's place,
/// the run's options, the timeline.
struct StepParts<Task: TrainingTask> {
    /// The task, this rank's replica of its model, and the `DataParallel` wrapping it.
    let task: Task, model: Task.Model, ddp: DataParallel
    /// The training split and the task's metrics.
    let train: TaskData<Task.Batch>, metrics: [Metric]
    /// The ranks, the update, the run's options.
    let comm: Communicator, optimizer: Optimizer, config: TrainerConfig
    /// Dropout's randomness (a deterministic step reseeds it per micro-batch).
    let dropoutGenerator: Generator
    /// What callbacks see (it carries a callback's request to stop), and the timeline.
    let context: TrainingContext, timeline: Timeline

    /// Whether this rank got a signal or a callback asked to stop, as batch statistics carry it.
    func stopFlags(_ s: inout BatchStatistics) {
        s.stopSignal = StopSignal.received != 0
        s.stopRequest = context.stopReason != nil
    }
}

/// The run's timeline while `--trace` records one (nil recorder: spans cost nothing).
final class Timeline {
    var recorder: TraceRecorder?

    /// Times `body` as a span when recording.
    func measure<R>(_ name: String, _ category: String, _ body: () throws -> R) rethrows -> R {
        guard let recorder else { return try body() }
        return try recorder.measure(name, category, body)
    }
}
