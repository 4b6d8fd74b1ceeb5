import Ember
import EmberDistributed
import Foundation
import Logging

/// An error every rank hits identically (bad options, bad data): rank 0 reports it; the other
/// ranks exit with the same status silently, so a 64-rank job prints it once.
public struct SharedError: Error, CustomStringConvertible {
    public let underlying: Error
    public let rank: Int
    public var description: String { "\(underlying)" }
}

/// `trainer train`: sets up the world (MPI under a launcher, threads with `--local-ranks`, or a
/// single process), prepares the run directory and data, and runs every rank's loop.
public enum Trainer {
    /// The rank the launcher assigned, read before MPI starts (0 without a launcher).
    public static var launcherRank: Int { (try? LaunchSettings.current())?.launcherRank ?? 0 }

    /// Trains a preset (`config.model` on `config.data`): what `trainer train` runs. When
    /// resuming, the checkpoint's configuration is the base and `overrides` (the flags) are
    /// applied on top. `settings` are what the environment says (`LaunchSettings.current()` when nil).
    public static func train(_ config: TrainerConfig, settings: LaunchSettings? = nil,
                             overrides: @escaping @Sendable (inout TrainerConfig) -> Void = { _ in }) throws -> RunSummary {
        try config.validate()
        if config.model.isLanguageModel {
            let summary = try launch(config, settings: settings, overrides: overrides, callbacks: { [] }) { config, settings in
                LanguageModelTask(config: config, text: try PreparedText(config, dataDirectory: settings.dataDirectory))
            }
            if let directory = config.pretrained, (try settings ?? LaunchSettings.current()).launcherRank == 0 {
                try PretrainedExport.write(run: summary.runDir, from: directory)
            }
            return summary
        }
        return try launch(config, settings: settings, overrides: overrides, callbacks: { [] }) { config, settings in
            PresetTask(config: config, data: try DataPreparation.prepare(config, dataDirectory: settings.dataDirectory))
        }
    }

    /// Trains `task` with `options`, on whatever launched this process: one process, ranks as
    /// threads (`options.localRanks`), or `mpirun`/`srun`. Everything `trainer train` does comes
    /// with it: checkpoints (`options.resume = "latest"` resumes bitwise), signals, progress,
    /// `metrics.jsonl`, `summary.json`, the report. `callbacks` makes each rank's callbacks
    /// (ranks as threads each need their own). When resuming, the checkpoint's options are the
    /// base and `overrides` is applied on top (by default: `options` replace them, keeping the
    /// run directory and `resume`). Returns rank 0's summary (every rank returns one).
    /// - Throws: `ConfigError`, `DataError` (shared by every rank: rank 0 reports them), `TrainingFailure`
    ///   when the loss diverged, `IOFailure`, or a communicator's error.
    public static func fit<Task: TrainingTask>(_ task: Task, options: TrainerConfig, settings: LaunchSettings? = nil,
                                               callbacks: @escaping @Sendable () -> [TrainingCallback] = { [] },
                                               overrides: (@Sendable (inout TrainerConfig) -> Void)? = nil) throws -> RunSummary {
        var options = options
        options.task = task.name
        try options.validate(forTask: true)
        let given = options
        let apply: @Sendable (inout TrainerConfig) -> Void = { c in
            if let overrides { overrides(&c) } else { c = given }
            c.task = task.name
        }
        return try launch(options, settings: settings, overrides: apply, callbacks: callbacks) { _, _ in task }
    }

    /// The world (MPI, threads or one process), then every rank's run of the task `makeTask` builds.
    static func launch<Task: TrainingTask>(_ config: TrainerConfig, settings: LaunchSettings?, overrides: @escaping @Sendable (inout TrainerConfig) -> Void,
                                           callbacks: @escaping @Sendable () -> [TrainingCallback],
                                           makeTask: @escaping @Sendable (TrainerConfig, LaunchSettings) throws -> Task) throws -> RunSummary {
        let settings = try settings ?? LaunchSettings.current()
        let launch = settings.launch
        if config.localRanks > 1 && launch.wantsMPI {
            throw ConfigError("--local-ranks \(config.localRanks) runs ranks as threads of one process; it cannot be combined with \(launch.launcher!)")
        }

        let comm: Communicator
        if launch.wantsMPI {
            comm = try settings.communicator(timeout: config.collectiveTimeout, isShuttingDown: { StopSignal.received != 0 })
        } else {
            comm = SingleProcessCommunicator()
        }
        let log = Logger.forRank(comm.rank, level: config.logLevel)
        if comm.rank == 0 { log.info("launch: \(launch)") }
        defer { comm.finalizeIfNeeded() }

        if config.localRanks > 1 {
            return try runThreadRanks(config, settings: settings, overrides: overrides, callbacks: callbacks, makeTask: makeTask)
        }

        // The launcher's word for the world must be MPI's: a trainer started alone in an N-task
        // allocation, or tasks direct-launched without PMI, are each a world of one.
        if let announced = launch.announcedWorldSize, announced != comm.worldSize {
            throw SharedError(underlying: ConfigError("\(launch.launcher ?? "the launcher") announced \(announced) tasks but MPI started a world of \(comm.worldSize): this trainer is not part of the job's MPI world (started alone, or direct-launched without PMI). Start it with `srun --mpi=pmix` or `launch/mpirun -n \(announced)`"), rank: settings.launcherRank)
        }
        // Ranks per node: the launcher's word, else MPI's shared-memory split.
        let ranksHere = launch.localSize ?? comm.topology?.ranksOnThisNode ?? 1
        setNumThreads(config.deterministic ? 1 : config.threads > 0 ? config.threads : max(1, ProcessInfo.processInfo.activeProcessorCount / ranksHere))
        if comm.rank == 0 { logProducts(log, blasCoreType: settings.blasCoreType, precision: config.precision) }
        do {
            return try sharingErrors(rank: comm.rank) {
                try runRank(config, overrides: overrides, comm: comm, log: log, settings: settings, callbacks: callbacks(), makeTask: makeTask)
            }
        } catch let error as SharedError {
            throw error  // every rank has it: all finalize and exit together
        } catch {
            // This rank alone failed; the others would wait for it forever (MPI_Finalize
            // included). Say why, then end the whole job.
            if launch.wantsMPI && comm.worldSize > 1 {
                log.critical("\(error); aborting all \(comm.worldSize) ranks")
                comm.abort(code: 1)
            }
            throw error
        }
    }

    /// `--local-ranks N`: the ranks as threads of this process, each running the task.
    private static func runThreadRanks<Task: TrainingTask>(_ config: TrainerConfig, settings: LaunchSettings,
                                                           overrides: @escaping @Sendable (inout TrainerConfig) -> Void,
                                                           callbacks: @escaping @Sendable () -> [TrainingCallback],
                                                           makeTask: @escaping @Sendable (TrainerConfig, LaunchSettings) throws -> Task) throws -> RunSummary {
        let world = LocalWorld(size: config.localRanks, timeout: config.collectiveTimeout)
        setNumThreads(config.threads > 0 ? config.threads : 1)
        let result = ResultSlot()
        do {
            try world.run { comm in
                let log = Logger.forRank(comm.rank, level: config.logLevel)
                let summary = try sharingErrors(rank: comm.rank) { try runRank(config, overrides: overrides, comm: comm, log: log, settings: settings,
                                                                                     callbacks: callbacks(), makeTask: makeTask) }
                if comm.rank == 0 { result.set(summary) }
            }
        } catch let error as RankError {
            // Ranks share the error; report it once, as rank 0 would.
            if let shared = error.underlying as? SharedError { throw SharedError(underlying: shared.underlying, rank: 0) }
            throw error
        }
        return result.get()!
    }

    /// Marks the errors every rank hits alike (options, data, divergence) as shared.
    static func sharingErrors<R>(rank: Int, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let error as ConfigError {
            throw SharedError(underlying: error, rank: rank)
        } catch let error as DataError {
            throw SharedError(underlying: error, rank: rank)
        } catch let error as TrainingFailure {
            throw SharedError(underlying: error, rank: rank)
        } catch let error as IOFailure {
            throw SharedError(underlying: error, rank: rank)
        }
    }

    /// One rank's whole run: resume lookup, run directory (rank 0 locks and checks it), data,
    /// model, loop.
    static func runRank<Task: TrainingTask>(_ initial: TrainerConfig, overrides: (inout TrainerConfig) -> Void, comm: Communicator,
                                            log: Logger, settings: LaunchSettings, callbacks: [TrainingCallback],
                                            makeTask: (TrainerConfig, LaunchSettings) throws -> Task) throws -> RunSummary {
        var start = try resolveStart(initial, overrides: overrides, forTask: !(Task.self == PresetTask.self)) { message in
            if comm.rank == 0 { log.warning("\(message)") }
        }
        try checkPrecision(start.config.precision)
        let lock = try claimRunDirectory(&start, makeOne: initial.runDir == nil && initial.resume == nil, comm: comm, log: log)
        let config = start.config, dir = start.runDir
        if comm.rank == 0, let from = start.forkedFrom {
            log.info("starting a new run in \(dir) from the checkpoint \(from) (its run directory is left as it is)")
        }
        var started = false
        defer { lock?.release(failedStart: !started) }
        let task = try makeTask(config, settings)
        let trainer = try RankLoop(config: config, comm: comm, task: task, runDir: dir, resume: start.checkpoint, log: log,
                                   settings: settings, callbacks: callbacks)
        try trainer.startupCheck()
        try onRankZero(comm) {
            if start.overAbandonedStart {
                log.warning("replacing what an earlier start that never reached a checkpoint left in \(dir)")
                for name in ["metrics.jsonl", "config.resumed.json"] { try? FileManager.default.removeItem(atPath: (dir as NSString).appendingPathComponent(name)) }
            }
            try createRunDirectory(dir, config: config, resuming: start.continuesRun || start.replacesFailedStart)
            do { try task.runDirectoryReady(dir) } catch { log.warning("\(error); the run goes on without it") }
        }
        started = true
        return try trainer.run()
    }

    /// Rank 0 takes the run directory (`makeOne`: a new one under the default name, when none was
    /// given) and checks it; every rank learns whether that worked and the directory's name.
    /// Rank 0 alone touches the file system, and nothing else is written until data and model
    /// are ready, so a start that fails leaves no trace.
    static func claimRunDirectory(_ start: inout RunStart, makeOne: Bool, comm: Communicator, log: Logger) throws -> RunDirectoryLock? {
        var lock: RunDirectoryLock? = nil, name = start.runDir
        if makeOne { start.overAbandonedStart = false }
        let claimed = start
        try onRankZero(comm) {
            if makeOne { name = try makeRunDirectory() }
            lock = try RunDirectoryLock(directory: name, madeForThisRun: makeOne)
            do {
                try checkRunDirectory(name, resuming: claimed.continuesRun, replacingFailedStart: claimed.replacesFailedStart || claimed.overAbandonedStart)
                if let trace = claimed.config.trace { try checkTraceDirectory(trace) }
                if claimed.continuesRun, let from = claimed.checkpoint?.path,
                   let note = try Checkpoints.setAsideNewer(than: from, runDir: name) { log.warning("\(note)") }
            } catch {
                lock?.release(failedStart: true)
                throw error
            }
        }
        if makeOne {
            name = try comm.broadcast(text: name)
            (start.runDir, start.config.runDir) = (name, name)
        }
        return lock
    }

    /// Runs `body` on rank 0 only (file system work) and tells every rank how it went: rank 0's
    /// error is rethrown there as shared (rank 0 reports it), the others end alike and silently,
    /// so a failure on rank 0 never leaves the other ranks waiting in a collective.
    static func onRankZero(_ comm: Communicator, _ body: () throws -> Void) throws {
        var problem: Error? = nil
        if comm.rank == 0 {
            do { try body() } catch { problem = error }
        }
        let verdict = try comm.broadcast([problem == nil ? 0 : 1], root: 0)
        if let problem { throw problem is SharedError ? problem : SharedError(underlying: problem, rank: 0) }
        if verdict[0] != 0 { throw SharedError(underlying: IOFailure("a problem on rank 0 (reported there)"), rank: comm.rank) }
    }

    static func defaultRunDirectory() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/run-\(f.string(from: Date()))"
    }

    /// A new run's directory when none was given: `runs/run-<time>`, or `-2`, `-3`, … after it
    /// when that exists (a run started in the same second), made with `mkdir`, so of two trainers
    /// started together each gets its own. Rank 0 makes it and tells the others its name
    /// (`claimRunDirectory`): ranks whose clocks read different seconds still share one.
    static func makeRunDirectory(base: String = defaultRunDirectory()) throws -> String {
        do {
            try FileManager.default.createDirectory(atPath: (base as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw ConfigError("cannot create run directory \(base): \(RunDirectoryLock.reason(error))")
        }
        for n in 1...1000 {
            let candidate = n == 1 ? base : "\(base)-\(n)"
            if mkdir(candidate, 0o777) == 0 { return candidate }
            guard errno == EEXIST else { throw ConfigError("cannot create run directory \(candidate): \(String(cString: strerror(errno)))") }
        }
        throw ConfigError("\(base) and a thousand runs after it exist: choose a --run-dir")
    }

    /// What a start that died before its first checkpoint may have left.
    static let failedStartFiles: Set<String> = ["config.json", "config.resumed.json", "metrics.jsonl", "checkpoints", "tokens"]

    /// Refuses to reuse another run's directory unless resuming, so nothing there is overwritten
    /// (`replacingFailedStart`: except what a start that died before its first checkpoint wrote).
    static func checkRunDirectory(_ dir: String, resuming: Bool, replacingFailedStart: Bool = false) throws {
        var existing = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0 != RunDirectoryLock.fileName }
        if replacingFailedStart { existing.removeAll { failedStartFiles.contains($0) || $0.hasPrefix(".") } }
        if !resuming && !existing.isEmpty {
            throw ConfigError("run directory \(dir) is not empty (it holds \(existing.sorted().prefix(3).joined(separator: ", "))\(existing.count > 3 ? ", ..." : "")); continue that run with --resume latest --run-dir \(dir), or choose another --run-dir")
        }
    }

    /// `--trace DIR` must be a directory this process can write, found out before anything else
    /// is written; what the check made it removes again.
    static func checkTraceDirectory(_ dir: String) throws {
        let fm = FileManager.default
        let existed = fm.fileExists(atPath: dir)
        let probe = (dir as NSString).appendingPathComponent(".probe-\(getpid())")
        do {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Data().write(to: URL(fileURLWithPath: probe))
            try fm.removeItem(atPath: probe)
        } catch {
            throw ConfigError("--trace \(dir): cannot write a timeline there (\(RunDirectoryLock.reason(error)))")
        }
        if !existed { try? fm.removeItem(atPath: dir) }
    }

    /// Creates the run directory and writes `config.json` (`config.resumed.json` when resuming),
    /// removing temporaries that an earlier, killed run left behind.
    static func createRunDirectory(_ dir: String, config: TrainerConfig, resuming: Bool) throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw ConfigError("cannot create run directory \(dir): \(error.localizedDescription)")
        }
        if resuming { Checkpoints.removeTemporaries(runDir: dir) }
        let configPath = (dir as NSString).appendingPathComponent(resuming ? "config.resumed.json" : "config.json")
        try AtomicFile.write(config.json(), to: configPath)
    }
}

/// A file the run must write could not be written (a full disk, say); the run ends on every rank.
public struct IOFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

private final class ResultSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var value: RunSummary?
    func set(_ v: RunSummary) { lock.lock(); value = v; lock.unlock() }
    func get() -> RunSummary? { lock.lock(); defer { lock.unlock() }; return value }
}
