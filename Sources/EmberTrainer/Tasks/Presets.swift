import Ember
import Foundation

/// The trainer's presets (`--model seednet|mlp|cnn|resnet-small|sequential`, or a model
/// registered under a name) on its data (`--data`), as a task: `trainer train` is
/// `Trainer.fit(PresetTask(...))`, through the same loop as every task of one's own.
/// Classification data trains with cross-entropy and reports accuracy, regression data with MSE.
struct PresetTask: SupervisedTask, @unchecked Sendable {
    let config: TrainerConfig
    let data: PreparedData

    var name: String { config.model.rawValue }
    var dataSource: String? { data.source }
    var dataNotice: String? { data.notice }

    var metrics: [Metric] { data.task == .classification ? [.accuracy] : [] }

    func makeModel(generators g: ModelGenerators) throws -> Module {
        try ModelFactory.make(config, sampleShape: data.sampleShape, outputs: data.outputs, generator: g.weights, dropoutGenerator: g.dropout)
    }

    func trainingData() -> TaskData<PairBatch> { TaskData(data.train) }
    func validationData() -> TaskData<PairBatch>? { data.val.map { TaskData($0) } }
    func testData() -> TaskData<PairBatch>? { data.test.map { TaskData($0) } }

    func loss(_ output: Tensor, _ target: Tensor) -> Tensor {
        data.task == .classification ? Losses.crossEntropy(output, target) : Losses.mse(output, target)
    }

    func record(output: Tensor, target: Tensor, log: inout MetricLog) {
        guard data.task == .classification else { return }
        let correct = noGrad { output.argmax(dim: 1).eq(target).sum().doubleItem() }
        log.record("accuracy", correct, count: Double(target.shape[0]))
    }
}

/// `--optimizer` as an optimizer, with the options' learning rate, momentum, betas and weight decay.
enum OptimizerChoice {
    static func make(_ c: TrainerConfig, _ params: [Tensor]) -> Optimizer {
        switch c.optimizer {
        case "adam": return Adam(parameters: params, learningRate: c.lr, betas: (c.beta1 ?? 0.9, c.beta2 ?? 0.999), weightDecay: c.weightDecay)
        case "adamw": return AdamW(parameters: params, learningRate: c.lr, betas: (c.beta1 ?? 0.9, c.beta2 ?? 0.999), weightDecay: c.weightDecay)
        case "rmsprop": return RMSprop(parameters: params, learningRate: c.lr, weightDecay: c.weightDecay, momentum: c.momentum ?? 0)
        case "adagrad": return Adagrad(parameters: params, learningRate: c.lr, weightDecay: c.weightDecay)
        default: return SGD(parameters: params, learningRate: c.lr, momentum: c.momentum ?? 0.9, weightDecay: c.weightDecay)
        }
    }
}

/// Models of one's own under a name, so that `--model NAME` (and a config's `"model"`) builds
/// them on any `--data`, with every trainer option:
///
/// ```swift
/// ModelRegistry.register("wide-mlp") { input in
///     Sequential(Flatten(), Linear(inFeatures: input.features, outFeatures: 1024, generator: input.generators.weights),
///                ReLU(), Linear(inFeatures: 1024, outFeatures: input.outputs, generator: input.generators.weights))
/// }
/// ```
public enum ModelRegistry {
    /// What a registered builder gets: the sample shape, the outputs the data needs, generators.
    public struct Input {
        public let sampleShape: [Int]
        public let outputs: Int
        public let generators: ModelGenerators
        public let config: TrainerConfig
        /// Values per sample (the sample shape's product).
        public var features: Int { sampleShape.reduce(1, *) }
    }
    public typealias Builder = @Sendable (Input) throws -> Module

    private static let lock = NSLock()
    nonisolated(unsafe) private static var builders: [String: Builder] = [:]  // guarded by `lock`

    /// Registers `build` under `name` (replacing an earlier one of that name). Preset names are refused.
    public static func register(_ name: String, _ build: @escaping Builder) {
        if TrainerConfig.models.contains(name) { fatalError("'\(name)' is a preset's name; register the model under another") }
        lock.lock(); defer { lock.unlock() }
        builders[name] = build
    }

    public static var names: [String] {
        lock.lock(); defer { lock.unlock() }
        return builders.keys.sorted()
    }

    static func builder(_ name: String) -> Builder? {
        lock.lock(); defer { lock.unlock() }
        return builders[name]
    }
}

/// The generators a task's model is built with: `weights` (seeded alike on every rank) for
/// initialisation, `dropout` (this rank's, saved in checkpoints) for dropout and other
/// randomness during training.
public struct ModelGenerators {
    public let weights: Generator
    public let dropout: Generator

    public init(weights: Generator, dropout: Generator) {
        self.weights = weights
        self.dropout = dropout
    }

    /// The generators the trainer hands `makeModel` for `seed` on `rank`: the same weights as
    /// the run's initial ones, and that rank's dropout stream.
    public init(seed: UInt64, rank: Int = 0) {
        self.init(weights: Generator(seed: seed), dropout: Generator(seed: seed &+ 1000 &+ UInt64(rank)))
    }
}
