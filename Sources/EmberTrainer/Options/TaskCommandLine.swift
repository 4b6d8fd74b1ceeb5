import Ember
import EmberDistributed
import Foundation

extension TrainingCommandLine {
    /// A program of one's own for `task`: `PROGRAM [train] [options]` trains it with every trainer
    /// option that applies to a task, `PROGRAM eval --checkpoint RUN [--split val|test|all]`
    /// reports its validation and test loss and metrics (exact over ranks under a launcher), and
    /// `PROGRAM inspect PATH` describes a run or checkpoint. Help and errors name the program;
    /// options of trainer's presets (`--model`, `--data`, `--n-layer` …) are refused. Never returns.
    ///
    /// ```swift
    /// @main struct CustomTraining {
    ///     static func main() { TrainingCommandLine.main(MyTask()) }
    /// }
    /// ```
    /// `defaults` are options the program sets for training before the user's flags (which win).
    public static func main<Task: TrainingTask>(_ task: Task, arguments: [String] = Array(CommandLine.arguments.dropFirst()),
                                                defaults: [String] = [],
                                                callbacks: @escaping @Sendable () -> [TrainingCallback] = { [] }) -> Never {
        let program = (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent }) ?? task.name
        var args = arguments
        let command = ["train", "eval", "inspect"].contains(args.first ?? "") ? args.removeFirst() : "train"
        if args.contains("--help") || args.contains("-h") {
            print(taskHelp(program: program, command: command, task: task.name))
            exit(0)
        }
        switch command {
        case "eval": evaluateTask(task, program: program, arguments: args)
        case "inspect":
            guard args.count == 1 else { usageError("\(program) inspect takes one run directory, checkpoint or .safetensors file", program) }
            do { print(try CheckpointTools.inspect(args[0])) } catch { fail(error) }
        default:
            let options = taskOptions(defaults + args, program: program)
            run { config in
                try Trainer.fit(task, options: config, callbacks: callbacks) { options.apply(to: &$0) }
            } configure: { try options.makeConfig() }
        }
        exit(0)
    }

    /// The trainer's options for a task, or (a usage error) one line and status 2.
    static func taskOptions(_ args: [String], program: String) -> TrainOptions {
        do {
            let parsed = try TrainerOption.parse(args, help: "\(program) --help")
            if let preset = parsed.settings.first(where: { TrainerOption.presetOnlyKeys.contains($0.0.key) })?.0 {
                usageError("\(preset.flag) is an option of trainer's preset models; \(program) trains its own model and data", program)
            }
            var options = TrainOptions()
            options.arguments = args
            try options.validate()
            return options
        } catch let error as ConfigError {
            usageError(error.description, program)
        } catch {
            usageError("\(error)", program)
        }
    }

    static func evaluateTask<Task: TrainingTask>(_ task: Task, program: String, arguments args: [String]) -> Never {
        var checkpoint: String?, split = "all"
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--checkpoint" where i + 1 < args.count: checkpoint = args[i + 1]; i += 1
            case "--split" where i + 1 < args.count: split = args[i + 1]; i += 1
            default: usageError("\(program) eval: unexpected '\(args[i])' (it takes --checkpoint RUN and --split val|test|all)", program)
            }
            i += 1
        }
        guard let checkpoint else { usageError("\(program) eval needs --checkpoint RUN (a run directory or checkpoint)", program) }
        guard ["val", "test", "all"].contains(split) else { usageError("--split must be val, test or all (got \(split))", program) }
        do {
            let settings = try LaunchSettings.current()
            let comm = try settings.communicator()
            defer { comm.finalizeIfNeeded() }
            let lines = try Trainer.evaluate(task, checkpoint: checkpoint, splits: split == "all" ? ["val", "test"] : [split], comm: comm)
            if comm.rank == 0 { lines.forEach { print($0) } }
        } catch {
            fail(error)
        }
        exit(0)
    }

    static func usageError(_ message: String, _ program: String) -> Never {
        let help = message.hasSuffix("--help") ? "" : " (see \(program) --help)"
        FileHandle.standardError.write(Data("error: \(message)\(help)\n".utf8))
        exit(2)
    }

    static func taskHelp(program: String, command: String, task: String) -> String {
        switch command {
        case "eval":
            return "USAGE: \(program) eval --checkpoint RUN [--split val|test|all]\n\nThe validation and test loss and metrics of \(task) with a run's weights (its final ones, or a checkpoint's)."
        case "inspect":
            return "USAGE: \(program) inspect PATH\n\nA run directory's, checkpoint's or .safetensors file's metadata and tensors, checksums verified."
        default:
            return """
            USAGE: \(program) [train] [options]
                   \(program) eval --checkpoint RUN [--split val|test|all]
                   \(program) inspect PATH

            Trains \(task) on one process, as ranks in threads (--local-ranks N), or under a launcher
            (mpirun, srun), with checkpoints, resuming and every option below.

            \(TrainerOption.helpText(forTask: true))
            """
        }
    }
}
