import ArgumentParser
import Ember
import EmberDistributed
import EmberTrainer
import Foundation

/// `trainer`: data-parallel training over MPI (or threads, or one process).
@main
struct TrainerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trainer",
        abstract: "Train neural networks with Ember, on one process or many (mpirun, srun, batch systems).",
        subcommands: [Train.self, Eval.self, Bench.self, Inspect.self, CheckDDP.self],
        defaultSubcommand: Train.self
    )

    /// Like `ParsableCommand.main()`, but a usage error exits with status 2 (the convention of
    /// shells and of every other trainer error) rather than argument parser's 64.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Prints a user-facing error once and exits with `code` (no crash trace for user mistakes).
func fail(_ error: Error, code: Int32) -> Never {
    if let shared = error as? SharedError, shared.rank != 0 { exit(code) }
    let prefix = Trainer.launcherRank == 0 ? "" : "[rank \(Trainer.launcherRank)] "
    FileHandle.standardError.write(Data("\(prefix)error: \(error)\n".utf8))
    exit(code)
}

struct TrainOptions: ParsableArguments {
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

    /// Applies the flags that were given on top of `c`.
    func apply(to c: inout TrainerConfig) {
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
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model (the default command).")
    @OptionGroup var options: TrainOptions

    func run() throws {
        let summary: RunSummary
        do {
            StopSignal.install(terminateExits: try LaunchSettings.current().terminateExits)
            var config = try options.config.map(TrainerConfig.load) ?? TrainerConfig()
            options.apply(to: &config)
            let flags = options
            summary = try Trainer.train(config) { flags.apply(to: &$0) }
        } catch let error as SharedError where error.underlying is TrainingFailure {
            fail(error, code: 3)
        } catch let error as SharedError where error.underlying is IOFailure {
            fail(error, code: 1)
        } catch let error as SharedError {
            fail(error, code: 2)
        } catch let error as ConfigError {
            fail(error, code: 2)
        } catch let error as DataError {
            fail(error, code: 2)
        } catch {
            fail(error, code: 1)
        }
        // A run stopped by a signal has written its checkpoint: that is a clean exit.
        _ = summary
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a checkpoint on its data (or on --data).")
    @Option(help: "A checkpoint directory, or a run directory (its latest good checkpoint).") var checkpoint: String
    @Option(help: "Data to evaluate on instead of the run's own (same formats as train).") var data: String?
    @Option(help: "Split: train, val, test or all.") var split = "test"

    func run() throws {
        guard ["train", "val", "test", "all"].contains(split) else { fail(ConfigError("--split must be train, val, test or all (got \(split))"), code: 2) }
        do {
            print(try CheckpointTools.evaluate(checkpoint: checkpoint, data: data, split: split,
                                               dataDirectory: try LaunchSettings.current().dataDirectory))
        } catch {
            fail(error, code: 2)
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time training steps of the benchmark models; one line per model.")
    @Option(help: "seednet, mlp, cnn, or all.") var model = "all"
    @Option(help: "Timed steps.") var steps = 200
    @Option(help: "Untimed warm-up steps.") var warmup = 20
    @Option(help: "BLAS threads per rank.") var threads = 1
    @Flag(inversion: .prefixedNo, help: "Overlap gradient allreduces with backward (default: when the ranks leave cores free or span nodes).")
    var overlap: Bool?
    @Flag(inversion: .prefixedNo, help: "Shard the optimizer step over the ranks (default: with two or more ranks and at least 100,000 parameters).")
    var shardOptimizer: Bool?
    @Option(help: "sgd (each model's specified optimizer) or adam (Adam, lr 0.001).") var optimizer = "sgd"
    @Flag(help: "Also time DataParallel's bucketed gradient averaging against one raw allreduce of the same bytes.") var allreduce = false
    @Flag(help: "Also measure DataLoader throughput on MNIST-shaped data.") var loader = false
    @Flag(help: "Also print rank 0's mean time per step in forward, backward, synchronize and optimizer step.") var phases = false

    func run() throws {
        let models = model == "all" ? EmberTrainer.Bench.models : [model]
        guard models.allSatisfy(EmberTrainer.Bench.models.contains) else {
            fail(ConfigError("--model \(model) is not one of seednet, mlp, cnn, all"), code: 2)
        }
        guard ["sgd", "adam"].contains(optimizer) else { fail(ConfigError("--optimizer \(optimizer) is not one of sgd, adam"), code: 2) }
        guard steps > 0, warmup >= 0, threads > 0 else { fail(ConfigError("--steps and --threads must be positive, --warmup non-negative"), code: 2) }
        do {
            let settings = try LaunchSettings.current()
            let comm = try settings.communicator()
            defer { (comm as? FinalizingCommunicator)?.finalize() }
            for name in models {
                let overlaps = overlap ?? settings.launch.overlapPaysOff(threadsPerRank: threads, cores: ProcessInfo.processInfo.activeProcessorCount)
                let result = try EmberTrainer.Bench.run(name, steps: steps, warmup: warmup, threads: threads, comm: comm,
                                                        overlap: overlaps, shardedStep: shardOptimizer, optimizer: optimizer, phases: phases)
                if comm.rank == 0 { print(result.line) }
                if comm.rank == 0, let line = result.phaseLine { print(line) }
            }
            if loader && comm.rank == 0 { print(EmberTrainer.Bench.loader()) }
            if allreduce {
                let line = try EmberTrainer.Bench.allreduce(comm: comm)
                if comm.rank == 0 { print(line) }
            }
        } catch {
            fail(error, code: 1)
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a checkpoint's (or safetensors file's) metadata and tensors.")
    @Argument(help: "A checkpoint directory, a run directory, or a .safetensors file.") var path: String

    func run() throws {
        do { print(try CheckpointTools.inspect(path)) } catch { fail(error, code: 2) }
    }
}

struct CheckDDP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-ddp",
        abstract: "Verify that data-parallel training on this world equals single-process training (used by launch/test).",
        shouldDisplay: false)

    func run() throws {
        do {
            let comm = try LaunchSettings.current().communicator(timeout: 60)
            defer { (comm as? FinalizingCommunicator)?.finalize() }
            var passed = true
            for kind in EquivalenceCheck.OptimizerKind.allCases {
                for sharded in [false, true] {
                    for loop in EquivalenceCheck.Loop.allCases {
                        let outcome = try EquivalenceCheck.run(kind, comm: comm, sharded: sharded, loop: loop)
                        if comm.rank == 0 { print(outcome) }
                        passed = passed && outcome.passed
                    }
                }
            }
            if !passed { throw ValidationError("data-parallel training differs from single-process training") }
        } catch {
            fail(error, code: 1)
        }
    }
}
