import Ember
import Foundation

/// What a user brings to `Trainer.fit`: how to build the model, the data, and the step; like a
/// LightningModule. The trainer owns the rest: ranks, samplers, the data-parallel wrapper, the
/// optimizer and schedules (from the options, unless `makeOptimizer` says otherwise), gradient
/// accumulation and clipping, exact global metrics, checkpoints with bitwise resume, signals,
/// progress, `metrics.jsonl`, `summary.json` and the report.
///
/// The smallest task gives a model and `(input, target)` data, and a loss:
///
/// ```swift
/// struct Regression: SupervisedTask {
///     func makeModel(generators g: ModelGenerators) -> Module {
///         Sequential(Linear(inFeatures: 8, outFeatures: 32, generator: g.weights), ReLU(),
///                    Linear(inFeatures: 32, outFeatures: 1, generator: g.weights))
///     }
///     func trainingData() -> TaskData<PairBatch> { TaskData(myDataset) }
///     func loss(_ output: Tensor, _ target: Tensor) -> Tensor { Losses.mse(output, target) }
/// }
/// let summary = try Trainer.fit(Regression(), options: TrainerConfig(epochs: 10, runDir: "runs/reg"))
/// ```
///
/// Every rank calls `makeModel` with weight generators seeded alike, so replicas start equal
/// (rank 0's weights are broadcast anyway); dropout draws from `generators.dropout`, this rank's
/// own, which checkpoints save, so a resumed run draws the same masks. With ranks as threads, ranks share the task value: keep it
/// immutable (a struct of settings), and build anything mutable in `makeModel` or the data.
public protocol TrainingTask: Sendable {
    /// What one batch holds: `(input, target)` pairs by default, anything a custom step reads.
    associatedtype Batch = PairBatch
    /// The model's type, so the steps call its own methods (any `Module`).
    associatedtype Model: Module = Module

    /// A name for logs and `summary.json` ("model").
    var name: String { get }
    /// Where the data comes from, for the start-up line (nil: not said).
    var dataSource: String? { get }
    /// Something about the data the user should know (a substitute data set, say), said once.
    var dataNotice: String? { get }

    /// Builds this rank's replica of the model.
    func makeModel(generators: ModelGenerators) throws -> Model

    /// The training samples; every rank reads its shard of each epoch.
    func trainingData() throws -> TaskData<Batch>
    /// Samples evaluated after every epoch (nil: none).
    func validationData() throws -> TaskData<Batch>?
    /// Samples evaluated once at the end (nil: none).
    func testData() throws -> TaskData<Batch>?

    /// Metrics of the task's own, besides `loss`, reduced exactly over the ranks and written
    /// as `train_<name>`, `val_<name>` and `test_<name>`.
    var metrics: [Metric] { get }

    /// One training step's loss on `batch` (the trainer calls backward on it); record metrics
    /// in `log`. The trainer records the loss itself, weighted by the batch's sample count.
    func trainingStep(model: Model, batch: Batch, log: inout MetricLog) -> Tensor
    /// One evaluation step: the loss on `batch`, metrics into `log` (no graph is recorded).
    func evaluationStep(model: Model, batch: Batch, log: inout MetricLog) -> Tensor

    /// The optimizer for `model`'s parameters; the default builds `options.optimizer` (with
    /// `options.lr`, momentum, betas, weight decay).
    func makeOptimizer(model: Model, options: TrainerConfig) throws -> Optimizer

    /// Called on rank 0 once the run's directory exists, before the first step: a task may keep
    /// files there (the language models keep a pretrained tokenizer's ids of their corpus). A
    /// failure is a warning; the run goes on.
    func runDirectoryReady(_ directory: String) throws

    /// Codable state of the task's own, saved in checkpoints and handed back on resume (nil: none).
    func checkpointState() throws -> Data?
    func restore(checkpointState: Data) throws
}

/// The batch of an `(input, target)` dataset.
public typealias PairBatch = (input: Tensor, target: Tensor)

/// Samples a task trains or evaluates on, read in batches by index.
public struct TaskData<Batch>: @unchecked Sendable {
    public let count: Int
    public let batch: ([Int]) -> Batch
    /// What the loss of the samples at some indices averages over (the tokens of a language
    /// model's windows); nil: the number of samples. Losses and `.mean` metrics combine over
    /// batches and ranks weighted by it, and throughput counts it.
    public let weight: (([Int]) -> Double)?
    /// What `weight` counts, for progress lines and `summary.json` (`samples`, `tokens`).
    public let unit: String

    /// `count` samples; `batch(indices)` gathers the ones at those indices.
    public init(count: Int, weight: (([Int]) -> Double)? = nil, unit: String = "samples", batch: @escaping ([Int]) -> Batch) {
        self.count = count
        self.batch = batch
        self.weight = weight
        self.unit = unit
    }

    /// The weight of the samples at `indices`.
    func weight(of indices: [Int]) -> Double { weight?(indices) ?? Double(indices.count) }
}

extension TaskData where Batch == PairBatch {
    /// Any `(input, target)` dataset.
    public init<D: Dataset>(_ dataset: D) {
        self.init(count: dataset.count) { dataset.batch($0) }
    }
}

extension TrainingTask {
    public var name: String { "\(Self.self)" }
    public var dataSource: String? { nil }
    public var dataNotice: String? { nil }
    public func validationData() throws -> TaskData<Batch>? { nil }
    public func testData() throws -> TaskData<Batch>? { nil }
    public var metrics: [Metric] { [] }
    public func checkpointState() throws -> Data? { nil }
    public func restore(checkpointState: Data) throws {}
    public func runDirectoryReady(_ directory: String) throws {}

    public func makeOptimizer(model: Model, options c: TrainerConfig) throws -> Optimizer {
        OptimizerChoice.make(c, model.parameters())
    }

    /// Evaluation is the training step without a graph, by default.
    public func evaluationStep(model: Model, batch: Batch, log: inout MetricLog) -> Tensor {
        noGrad { trainingStep(model: model, batch: batch, log: &log) }
    }
}

/// Tasks over `(input, target)` batches need only a loss.
public protocol SupervisedTask: TrainingTask where Batch == PairBatch {
    /// The loss of `output` (the model's) against `target`, averaged over the batch.
    func loss(_ output: Tensor, _ target: Tensor) -> Tensor
    /// Metrics of one batch's output, recorded in `log` (default: none).
    func record(output: Tensor, target: Tensor, log: inout MetricLog)
}

extension SupervisedTask {
    public func record(output: Tensor, target: Tensor, log: inout MetricLog) {}

    public func trainingStep(model: Model, batch: PairBatch, log: inout MetricLog) -> Tensor {
        let output = model(batch.input)
        record(output: output, target: batch.target, log: &log)
        return loss(output, batch.target)
    }
}

/// A metric of a task's own, and how its per-batch values combine over batches and ranks.
public struct Metric: Sendable, Equatable {
    public enum Reduction: String, Sendable, Codable {
        /// Sum over everything recorded, divided by the summed counts (a loss per sample, an accuracy).
        case mean
        /// Sum over everything recorded (a count of tokens).
        case sum
        /// Largest or smallest value recorded.
        case max, min
        /// `exp` of the mean (perplexity, from per-token losses recorded as for `.mean`).
        case exponentiatedMean
    }
    public let name: String
    public let reduction: Reduction
    /// Whether larger is better (early stopping, plateau, keeping the best checkpoints).
    public let higherIsBetter: Bool

    public init(_ name: String, _ reduction: Reduction = .mean, higherIsBetter: Bool = false) {
        self.name = name
        self.reduction = reduction
        self.higherIsBetter = higherIsBetter
    }

    /// The share of correct predictions: record with `log.record("accuracy", correct, count: n)`.
    public static let accuracy = Metric("accuracy", .mean, higherIsBetter: true)
}

/// One step's (or one epoch's) metric values on this rank, before the ranks are combined.
public struct MetricLog: Sendable {
    /// Per metric: value sum (or extreme) and count.
    var values: [String: (value: Double, count: Double)] = [:]
    let declared: [String: Metric.Reduction]

    init(_ metrics: [Metric]) {
        declared = Dictionary(metrics.map { ($0.name, $0.reduction) }, uniquingKeysWith: { a, _ in a })
    }

    /// Records `value` for metric `name`: a sum over `count` samples for `.mean` metrics, a
    /// term for `.sum`, a candidate for `.max`/`.min`. The metric must be declared in
    /// `TrainingTask.metrics`.
    public mutating func record(_ name: String, _ value: Double, count: Double = 1) {
        guard let reduction = declared[name] else {
            stopUndeclared(name)
        }
        let old = values[name]
        switch reduction {
        case .mean, .sum, .exponentiatedMean: values[name] = ((old?.value ?? 0) + value, (old?.count ?? 0) + count)
        case .max: values[name] = (Swift.max(old?.value ?? -.infinity, value), (old?.count ?? 0) + count)
        case .min: values[name] = (Swift.min(old?.value ?? .infinity, value), (old?.count ?? 0) + count)
        }
    }

    private func stopUndeclared(_ name: String) -> Never {
        fatalError("metric '\(name)' is not declared in the task's `metrics` (declared: \(declared.keys.sorted().joined(separator: ", ")))")
    }
}

/// Where callbacks run.
public enum CallbackRanks: Sendable {
    /// Rank 0 only (the default: logging, files).
    case coordinator
    /// Every rank (state that each replica keeps).
    case everyRank
}

/// Code that observes named moments of training and may ask it to stop, like Lightning's and
/// Keras' callbacks. Every method has a default that does nothing.
public protocol TrainingCallback: AnyObject {
    var ranks: CallbackRanks { get }
    /// After each optimizer step.
    func stepEnded(_ context: TrainingContext)
    /// After each validation (every epoch that has validation data).
    func validationEnded(_ context: TrainingContext)
    /// After each epoch, with its metrics.
    func epochEnded(_ context: TrainingContext)
    /// After a checkpoint is written (rank 0 writes; `path` is the checkpoint directory).
    func checkpointSaved(_ context: TrainingContext, path: String)
    /// State to save in checkpoints (rank 0's is saved and given back to every rank on resume).
    func checkpointState() throws -> Data?
    func restore(checkpointState: Data) throws
}

extension TrainingCallback {
    public var ranks: CallbackRanks { .coordinator }
    public func stepEnded(_ context: TrainingContext) {}
    public func validationEnded(_ context: TrainingContext) {}
    public func epochEnded(_ context: TrainingContext) {}
    public func checkpointSaved(_ context: TrainingContext, path: String) {}
    public func checkpointState() throws -> Data? { nil }
    public func restore(checkpointState: Data) throws {}
}

/// What a callback sees, and how it steers: `requestStop` ends training at the next step boundary
/// on every rank (the ranks agree in the step's reduction).
public final class TrainingContext {
    public let rank: Int, worldSize: Int
    public internal(set) var epoch = 0
    public internal(set) var step = 0
    /// The latest values: this step's `train_loss` during an epoch; at an epoch's end every
    /// metric of the epoch (`train_loss`, `train_accuracy`, `val_loss`, …, `lr`).
    public internal(set) var metrics: [String: Double] = [:]
    public let model: Module
    public let optimizer: Optimizer
    var stopReason: String?

    init(rank: Int, worldSize: Int, model: Module, optimizer: Optimizer) {
        self.rank = rank
        self.worldSize = worldSize
        self.model = model
        self.optimizer = optimizer
    }

    /// Asks training to stop after this step (or epoch); `reason` becomes the run's stop reason.
    public func requestStop(_ reason: String) { stopReason = stopReason ?? reason }
}
