import ArgumentParser
import Ember
import Foundation

/// Every option of `trainer train`, as flags: `@OptionGroup var options: TrainOptions` in a
/// command of one's own gives it all of them (`TrainingCommandLine.main` does).
public struct TrainOptions: ParsableArguments {
    public init() {}

    @Option(help: "JSON file with any of the options below (flags override it).") var config: String?
    @Option(help: "Model: seednet, mlp, cnn (LeNet-5), resnet-small, or sequential (layers in --config).") var model: String?
    @Option(help: "Data: mnist5k (bundled), synthetic, csv:PATH, idx:DIR, npy:DIR.") var data: String?
    @Option(parsing: .unconditional, help: "Target column of csv: data (negative counts from the end; default -1, the last).") var labelColumn: Int?
    @Flag(help: "Standardise features with the training split's mean and standard deviation.") var standardize = false
    @Option(parsing: .unconditional, help: "Number of classes (default: largest label + 1).") var numClasses: Int?
    @Option(parsing: .unconditional, help: "Fraction of the data held out for validation.") var valFraction: Double?
    @Option(parsing: .unconditional, help: "Fraction held out for the final test (unless the data has its own test files).") var testFraction: Double?
    @Option(parsing: .unconditional, help: "Samples of --data synthetic.") var syntheticSamples: Int?
    @Option(parsing: .unconditional, help: "Epochs to train.") var epochs: Int?
    @Option(parsing: .unconditional, help: "Batch size per rank (the global batch is this times the world size).") var batchSize: Int?
    @Option(parsing: .unconditional, help: "Learning rate.") var lr: Double?
    @Option(help: "Optimizer: sgd, adam, adamw, rmsprop, adagrad.") var optimizer: String?
    @Option(parsing: .unconditional, help: "Momentum (sgd, rmsprop; sgd defaults to 0.9).") var momentum: Double?
    @Option(parsing: .unconditional, help: "Adam's β1 (adam, adamw; default 0.9).") var beta1: Double?
    @Option(parsing: .unconditional, help: "Adam's β2 (adam, adamw; default 0.999).") var beta2: Double?
    @Option(parsing: .unconditional, help: "Weight decay (L2 penalty; decoupled for adamw).") var weightDecay: Double?
    @Option(help: "Learning-rate schedule: none, step, cosine, onecycle, plateau.") var schedule: String?
    @Option(parsing: .unconditional, help: "Epochs of linear warm-up before the schedule.") var warmupEpochs: Int?
    @Option(parsing: .unconditional, help: "Batches whose gradients are accumulated per optimizer step.") var gradAccumulation: Int?
    @Option(parsing: .unconditional, help: "Clip the global gradient norm to this value.") var clipNorm: Double?
    @Option(parsing: .unconditional, help: "Clip every gradient element to ±this value.") var clipValue: Double?
    @Option(parsing: .unconditional, help: "Dropout probability in the model presets (0: none).") var dropout: Double?
    @Option(parsing: .unconditional, help: "Early stopping: epochs without validation improvement before stopping.") var patience: Int?
    @Option(parsing: .unconditional, help: "Early stopping: smallest validation loss decrease that counts as improvement.") var minDelta: Double?
    @Option(help: "The metric early stopping, --schedule plateau and --keep-best watch: val_loss (default), val_accuracy, train_loss, or val_NAME of a task's metric.") var monitor: String?
    @Option(parsing: .unconditional, help: "Also keep the checkpoints of the N best epochs by --monitor.") var keepBest: Int?
    @Option(parsing: .unconditional, help: "Seed for initialisation, data splits and shuffling.") var seed: UInt64?
    @Option(help: "Run directory (default runs/run-<time>); it must be new unless resuming.") var runDir: String?
    @Option(help: "Continue a run: 'latest' (in --run-dir), a checkpoint directory, or a run directory.") var resume: String?
    @Option(parsing: .unconditional, help: "Write a checkpoint every N epochs (0: only at the end and on signals).") var checkpointInterval: Int?
    @Option(parsing: .unconditional, help: "Checkpoints to keep.") var keepLast: Int?
    @Option(parsing: .unconditional, help: "Progress line every N steps when output is not a terminal.") var logInterval: Int?
    @Option(help: "Diagnostics level: trace, debug, info, notice, warning, error.") var logLevel: String?
    @Option(parsing: .unconditional, help: "Run N ranks as threads of this process (testing without mpirun).") var localRanks: Int?
    @Option(parsing: .unconditional, help: "BLAS threads per rank (0: cores divided by ranks on this node).") var threads: Int?
    @Option(parsing: .unconditional, help: "Seconds a rank may wait in a collective before the job is ended.") var collectiveTimeout: Double?
    @Option(parsing: .unconditional, help: "Gradient bucket size for allreduce, in KiB.") var bucketKB: Int?
    @Flag(inversion: .prefixedNo, help: "Overlap gradient allreduces with backward (default: when the ranks leave cores free or span nodes).")
    var overlap: Bool?
    @Flag(inversion: .prefixedNo, help: "Shard the optimizer step over the ranks: reduce-scatter gradients, update a shard, allgather it (default: with two or more ranks and at least 100,000 parameters).")
    var shardOptimizer: Bool?

    /// The options the flags (and `--config FILE`) give, on top of the defaults.
    public func makeConfig() throws -> TrainerConfig {
        var c = try config.map(TrainerConfig.load) ?? TrainerConfig()
        apply(to: &c)
        return c
    }

    /// Applies the flags that were given on top of `c`.
    public func apply(to c: inout TrainerConfig) {
        if let model { c.model = model }
        if let data { c.data = data }
        if let labelColumn { c.labelColumn = labelColumn }
        if standardize { c.standardize = true }
        if let numClasses { c.numClasses = numClasses }
        if let valFraction { c.valFraction = valFraction }
        if let testFraction { c.testFraction = testFraction }
        if let syntheticSamples { c.syntheticSamples = syntheticSamples }
        if let epochs { c.epochs = epochs }
        if let batchSize { c.batchSize = batchSize }
        if let lr { c.lr = lr }
        if let optimizer { c.optimizer = optimizer }
        if let momentum { c.momentum = momentum }
        if let beta1 { c.beta1 = beta1 }
        if let beta2 { c.beta2 = beta2 }
        if let weightDecay { c.weightDecay = weightDecay }
        if let schedule { c.schedule = schedule }
        if let warmupEpochs { c.warmupEpochs = warmupEpochs }
        if let gradAccumulation { c.gradAccumulation = gradAccumulation }
        if let clipNorm { c.clipNorm = clipNorm }
        if let clipValue { c.clipValue = clipValue }
        if let dropout { c.dropout = dropout }
        if let patience { c.patience = patience }
        if let minDelta { c.minDelta = minDelta }
        if let seed { c.seed = seed }
        if let runDir { c.runDir = runDir }
        if let resume { c.resume = resume }
        if let checkpointInterval { c.checkpointInterval = checkpointInterval }
        if let keepLast { c.keepLast = keepLast }
        if let logInterval { c.logInterval = logInterval }
        if let logLevel { c.logLevel = logLevel }
        if let localRanks { c.localRanks = localRanks }
        if let threads { c.threads = threads }
        if let collectiveTimeout { c.collectiveTimeout = collectiveTimeout }
        if let bucketKB { c.bucketKB = bucketKB }
        if let overlap { c.overlap = overlap }
        if let shardOptimizer { c.shardOptimizer = shardOptimizer }
        if let monitor { c.monitor = monitor }
        if let keepBest { c.keepBest = keepBest }
    }
}


/// A training executable's command line: `trainer train`'s, or one's own program's that trains
/// a task of its own with every trainer option:
///
/// ```swift
/// @main struct CustomTraining {
///     static func main() { TrainingCommandLine.main(MyTask()) }
/// }
/// ```
///
/// It parses the trainer's flags (`--run-dir`, `--epochs`, `--resume latest`, `--local-ranks`,
/// …), installs the signal handling, trains, and exits with the trainer's statuses: 0 done (or
/// stopped by a signal after its checkpoint), 1 a fault, 2 a usage error, 3 divergence.
public enum TrainingCommandLine {
    /// Trains `task` with the options in `arguments` (the program's, by default). Never returns.
    public static func main<Task: TrainingTask>(_ task: Task, arguments: [String] = Array(CommandLine.arguments.dropFirst()),
                                                callbacks: @escaping @Sendable () -> [TrainingCallback] = { [] }) -> Never {
        let options: TrainOptions
        do {
            options = try TrainOptions.parse(arguments)
        } catch {
            if TrainOptions.exitCode(for: error) == .success { TrainOptions.exit(withError: error) }
            FileHandle.standardError.write(Data((TrainOptions.fullMessage(for: error) + "\n").utf8))
            exit(2)
        }
        run { config in
            try Trainer.fit(task, options: config, callbacks: callbacks) { options.apply(to: &$0) }
        } configure: { try options.makeConfig() }
        exit(0)
    }

    /// Installs the signal handling, builds the options with `configure`, runs `train`, and on an
    /// error prints it once (rank 0) and exits with its status.
    public static func run(_ train: (TrainerConfig) throws -> RunSummary, configure: () throws -> TrainerConfig) {
        do {
            StopSignal.install(terminateExits: try LaunchSettings.current().terminateExits)
            _ = try train(try configure())
        } catch {
            fail(error)
        }
    }

    /// The exit status for an error of training: 3 divergence, 1 a fault, 2 a usage error.
    public static func status(for error: Error) -> Int32 {
        let underlying = (error as? SharedError)?.underlying ?? error
        switch underlying {
        case is TrainingFailure: return 3
        case is IOFailure: return 1
        case is ConfigError, is DataError: return 2
        default: return 1
        }
    }

    /// Prints a user-facing error once (ranks other than 0 stay silent for errors every rank
    /// shares) and exits with its status: no crash trace for a user's mistake.
    public static func fail(_ error: Error, status: Int32? = nil) -> Never {
        let code = status ?? self.status(for: error)
        if let shared = error as? SharedError, shared.rank != 0 { exit(code) }
        let rank = Trainer.launcherRank
        FileHandle.standardError.write(Data("\(rank == 0 ? "" : "[rank \(rank)] ")error: \(error)\n".utf8))
        exit(code)
    }
}
