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
        subcommands: [Train.self, Eval.self, Bench.self, Inspect.self, Trace.self, CheckDDP.self, Options.self],
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


struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model (the default command).", discussion: TrainerOption.helpText)
    @OptionGroup var options: TrainOptions

    func run() throws {
        let flags = options
        TrainingCommandLine.run { config in try Trainer.train(config) { flags.apply(to: &$0) } } configure: { try flags.makeConfig() }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a checkpoint on its data (or on --data).")
    @Option(help: "A checkpoint directory, or a run directory (its latest good checkpoint).") var checkpoint: String
    @Option(help: "Data to evaluate on instead of the run's own (same formats as train).") var data: String?
    @Option(help: "Split: train, val, test or all.") var split = "test"

    func run() throws {
        guard ["train", "val", "test", "all"].contains(split) else { TrainingCommandLine.fail(ConfigError("--split must be train, val, test or all (got \(split))"), status: 2) }
        do {
            print(try CheckpointTools.evaluate(checkpoint: checkpoint, data: data, split: split,
                                               dataDirectory: try LaunchSettings.current().dataDirectory))
        } catch {
            TrainingCommandLine.fail(error, status: 2)
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
            TrainingCommandLine.fail(ConfigError("--model \(model) is not one of seednet, mlp, cnn, all"), status: 2)
        }
        guard ["sgd", "adam"].contains(optimizer) else { TrainingCommandLine.fail(ConfigError("--optimizer \(optimizer) is not one of sgd, adam"), status: 2) }
        guard steps > 0, warmup >= 0, threads > 0 else { TrainingCommandLine.fail(ConfigError("--steps and --threads must be positive, --warmup non-negative"), status: 2) }
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
            TrainingCommandLine.fail(error, status: 1)
        }
    }
}

/// The options table of docs/trainer.md, from the options' one definition (a test keeps the two equal).
struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print train's options as the Markdown table of docs/trainer.md.", shouldDisplay: false)
    func run() throws { print(TrainerOption.markdownTable) }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Merge a --trace directory's per-rank files into trace.json and print where a step's time went per rank.")
    @Argument(help: "The directory given to --trace.") var directory: String

    func run() throws {
        do {
            let merged = try TraceTools.merge(directory: directory)
            print("trace: \(merged) (open it in Perfetto or chrome://tracing)")
            print(try TraceTools.summary(directory: directory))
        } catch {
            TrainingCommandLine.fail(error, status: 2)
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a checkpoint's (or safetensors file's) metadata and tensors.")
    @Argument(help: "A checkpoint directory, a run directory, or a .safetensors file.") var path: String

    func run() throws {
        do { print(try CheckpointTools.inspect(path)) } catch { TrainingCommandLine.fail(error, status: 2) }
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
            TrainingCommandLine.fail(error, status: 1)
        }
    }
}
