import ArgumentParser
import Ember
import Foundation

/// Every option of `trainer train`, as flags (`TrainerOption.all` defines them):
/// `@OptionGroup var options: TrainOptions` in a command of one's own gives it all of them
/// (`TrainingCommandLine.main` does).
public struct TrainOptions: ParsableArguments {
    public init() {}

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Options; see the list below (or docs/trainer.md).", valueName: "options"))
    var arguments: [String] = []

    /// Every flag known, every value present and of its type: a usage error (status 2) otherwise.
    public mutating func validate() throws {
        do {
            var scratch = TrainerConfig()
            try apply(TrainerOption.parse(arguments).settings, to: &scratch)
        } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
    }

    /// The options the flags (and `--config FILE`) give, on top of the defaults; when resuming,
    /// on top of the run's own options (so `--resume latest --run-dir R` alone resumes any run).
    public func makeConfig() throws -> TrainerConfig {
        let parsed = try TrainerOption.parse(arguments)
        if let resume = parsed.settings.last(where: { $0.0.key == "resume" })?.1 {
            let runDir = parsed.settings.last(where: { $0.0.key == "runDir" })?.1
            let fresh = resume == "auto" && Checkpoints.list(runDir: runDir ?? "").isEmpty
            if !fresh {
                var c = try Checkpoints.savedConfig(resume, runDir: runDir)
                try apply(parsed.settings, to: &c)
                return c
            }
        }
        // The model (a flag, or the config file's) picks the defaults the rest goes on top of.
        let file = parsed.configFile.flatMap { FileManager.default.contents(atPath: $0) }
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        let fileModel = file["model"] as? String
        let pretrained = parsed.settings.contains { $0.0.key == "pretrained" } ? ModelName.pretrained.rawValue : nil
        let model = pretrained ?? parsed.settings.last(where: { $0.0.key == "model" })?.1 ?? fileModel
        let base = model.map { TrainerConfig(model: ModelName(rawValue: $0)) } ?? TrainerConfig()
        var c = try parsed.configFile.map { try TrainerConfig.load($0, base: base) } ?? base
        try apply(parsed.settings, to: &c)
        if c.pretrained != nil { c.model = .pretrained }
        if !parsed.settings.contains(where: { $0.0.key == "warmupSteps" }) && file["warmupSteps"] == nil {
            c.fitWarmup(of: base)
        }
        return c
    }

    /// Applies the flags that were given on top of `c` (what a resumed run does to the
    /// checkpoint's options).
    public func apply(to c: inout TrainerConfig) {
        // `validate()` has parsed and applied them once already, so this cannot fail.
        guard let parsed = try? TrainerOption.parse(arguments) else { return }
        try? apply(parsed.settings, to: &c)
    }

    private func apply(_ settings: [(TrainerOption, String?)], to c: inout TrainerConfig) throws {
        for (option, text) in settings { try option.set(text, &c) }
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
    /// `trainer train` in a program of one's own: the presets and every model registered with
    /// `ModelRegistry` (`--model NAME`), with every option. Never returns.
    public static func trainPresets(arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        let options = parseOrExit(arguments)
        run { config in try Trainer.train(config) { options.apply(to: &$0) } } configure: { try options.makeConfig() }
        exit(0)
    }

    /// The options in `arguments`, or (a usage error) the message and status 2.
    static func parseOrExit(_ arguments: [String]) -> TrainOptions {
        do {
            return try TrainOptions.parse(arguments)
        } catch {
            if TrainOptions.exitCode(for: error) == .success {
                print(TrainOptions.helpMessage() + "\n" + TrainerOption.helpText)
                exit(0)
            }
            FileHandle.standardError.write(Data((TrainOptions.fullMessage(for: error) + "\n").utf8))
            exit(2)
        }
    }

    /// Installs the signal handling, builds the options with `configure`, runs `train`, and on an
    /// error prints it once (rank 0) and exits with its status.
    public static func run(_ train: (TrainerConfig) throws -> RunSummary, configure: () throws -> TrainerConfig) {
        do {
            let settings = try LaunchSettings.current()
            StopSignal.install(terminateExits: settings.terminateExits)
            if !settings.debug { reportMistakesInOneLine(rank: settings.launcherRank) }
            _ = try train(try configure())
        } catch {
            fail(error)
        }
    }

    /// A mistake in the model or the training code that Ember stops on (a shape mismatch) ends
    /// this rank with its message in one line and status 1, not a backtrace of every thread
    /// (`EMBER_DEBUG=1` keeps the backtrace). Under a launcher each failing rank says it once.
    static func reportMistakesInOneLine(rank: Int) {
        Mistakes.handler = { message, location in
            let prefix = rank == 0 ? "" : "[rank \(rank)] "
            FileHandle.standardError.write(Data("\(prefix)error: \(message) (stopped at \(location); EMBER_DEBUG=1 shows a backtrace)\n".utf8))
            exit(1)
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
        if let shared = error as? SharedError, shared.rank != 0 {
            // Rank 0 reports it. Leave it the time to: the first rank to exit makes mpirun end
            // the others at once.
            usleep(1_000_000)
            exit(code)
        }
        let rank = Trainer.launcherRank
        FileHandle.standardError.write(Data("\(rank == 0 ? "" : "[rank \(rank)] ")error: \(error)\n".utf8))
        exit(code)
    }
}
