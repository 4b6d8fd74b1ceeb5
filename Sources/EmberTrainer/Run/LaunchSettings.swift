import EmberDistributed
import Foundation

/// Everything the trainer takes from the process environment, read once by launch code (the
/// `trainer` command, `Trainer.train`) and handed down as values: nothing deeper in Ember reads
/// the environment.
///
/// | variable | setting |
/// |---|---|
/// | `OMPI_COMM_WORLD_*`, `PMIX_*`, `PMI_*`, `SLURM_*` | `launch`, `launcherRank` (who started us) |
/// | `EMBER_SHARED_MEMORY` (0, 1, unset) | `sharedMemory.enabled` |
/// | `EMBER_SHARED_MEMORY_LIMIT` (bytes) | `sharedMemory.limitBytes` |
/// | `EMBER_DATA_DIR` | `dataDirectory` (where the bundled MNIST subset is) |
/// | `EMBER_INJECT_FAILURE=RANK:STEP` | `injectedFailure` (a test hook) |
/// | `OPENBLAS_CORETYPE` | `blasCoreType` (only named in the start-up log) |
/// | `EMBER_SIGTERM=exit` (set by `launch/mpirun`) | `terminateExits` (see `StopSignal.install`) |
/// | `EMBER_DEBUG=1` | `debug`: a mistake in the model stops with a backtrace, not one line |
/// | `OMPI_MCA_mpi_yield_when_idle` (set here when unset and ranks outnumber cores) | `yieldsWhenIdle` |
public struct LaunchSettings: Sendable {
    public var launch: LaunchEnvironment
    /// The rank the launcher assigned, known before MPI starts (0 without a launcher).
    public var launcherRank: Int
    public var sharedMemory: MPICommunicator.SharedMemorySetting
    public var dataDirectory: String?
    /// Makes that rank fail at that step, so tests can check that one rank's failure ends the
    /// whole job promptly.
    public var injectedFailure: InjectedFailure?
    public var blasCoreType: String?
    /// Whether progress may be redrawn in place: a terminal, not a launcher's or CI's output.
    public var interactive: Bool
    /// Whether SIGTERM ends the process at once (`StopSignal.install(terminateExits:)`).
    public var terminateExits = false
    /// A mistake Ember stops on (a shape mismatch in the model) ends with a backtrace instead of
    /// one line per rank.
    public var debug = false
    /// Whether MPI's ranks yield their cores while they wait: more ranks on this node than cores
    /// (by the launcher's count) and `OMPI_MCA_mpi_yield_when_idle` not set.
    public var yieldsWhenIdle = false

    public init(launch: LaunchEnvironment = LaunchEnvironment.detect([:]), launcherRank: Int = 0,
                sharedMemory: MPICommunicator.SharedMemorySetting = .init(), dataDirectory: String? = nil,
                injectedFailure: InjectedFailure? = nil, blasCoreType: String? = nil, interactive: Bool = false) {
        self.launch = launch
        self.launcherRank = launcherRank
        self.sharedMemory = sharedMemory
        self.dataDirectory = dataDirectory
        self.injectedFailure = injectedFailure
        self.blasCoreType = blasCoreType
        self.interactive = interactive
    }

    /// The settings `env` describes.
    /// - Throws: `ConfigError` naming a variable whose value cannot be used.
    public static func from(_ env: [String: String]) throws -> LaunchSettings {
        var s = LaunchSettings(launch: LaunchEnvironment.detect(env))
        s.launcherRank = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"].lazy.compactMap { env[$0].flatMap(Int.init) }.first ?? 0
        switch env["EMBER_SHARED_MEMORY"] {
        case nil: break
        case "0": s.sharedMemory.enabled = false
        case "1": s.sharedMemory.enabled = true
        case let other?:
            throw ConfigError("EMBER_SHARED_MEMORY must be 0 (never) or 1 (always), or unset to let Ember decide (got '\(other)')")
        }
        if let limit = env["EMBER_SHARED_MEMORY_LIMIT"] {
            guard let bytes = Int(limit), bytes >= 0 else { throw ConfigError("EMBER_SHARED_MEMORY_LIMIT must be a number of bytes (got '\(limit)')") }
            s.sharedMemory.limitBytes = bytes
        }
        s.dataDirectory = env["EMBER_DATA_DIR"]
        if let spec = env["EMBER_INJECT_FAILURE"] {
            let parts = spec.split(separator: ":").compactMap { Int($0) }
            guard parts.count == 2 else { throw ConfigError("EMBER_INJECT_FAILURE must be RANK:STEP (got '\(spec)')") }
            s.injectedFailure = InjectedFailure(rank: parts[0], step: parts[1])
        }
        s.blasCoreType = env["OPENBLAS_CORETYPE"]
        s.debug = ["1", "yes", "true"].contains(env["EMBER_DEBUG"] ?? "")
        if let local = s.launch.localSize, local > ProcessInfo.processInfo.activeProcessorCount, env["OMPI_MCA_mpi_yield_when_idle"] == nil {
            s.yieldsWhenIdle = true
        }
        switch env["EMBER_SIGTERM"] {
        case nil, "checkpoint": break
        case "exit": s.terminateExits = true
        case let other?: throw ConfigError("EMBER_SIGTERM must be 'exit' or 'checkpoint' (got '\(other)')")
        }
        // mpirun gives ranks a pseudo-terminal even when its own output goes to a file.
        let launched = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID", "PBS_JOBID", "SLURM_JOB_ID", "CI"]
            .contains { env[$0] != nil }
        s.interactive = isatty(STDOUT_FILENO) == 1 && !launched
        return s
    }

    /// The settings of this process's environment.
    public static func current() throws -> LaunchSettings { try from(ProcessInfo.processInfo.environment) }

    /// The communicator this launch calls for: MPI under a launcher, else a world of one.
    public func communicator(timeout: Double = 300, isShuttingDown: @escaping @Sendable () -> Bool = { false }) throws -> Communicator {
        guard launch.wantsMPI else { return SingleProcessCommunicator() }
        prepareMPI()
        return try MPICommunicator(timeout: timeout, sharedMemory: sharedMemory, isShuttingDown: isShuttingDown)
    }

    /// Open MPI spins while it waits. With more ranks than cores on a node, the spinning ranks
    /// starve the ones that would make progress (under `srun --overcommit` a two-node mlp ran
    /// 15× slower here; `mpirun --oversubscribe` yields by itself), so before MPI starts this
    /// asks it to yield (`OMPI_MCA_mpi_yield_when_idle=1`, unless the environment says otherwise).
    func prepareMPI() {
        if yieldsWhenIdle { setenv("OMPI_MCA_mpi_yield_when_idle", "1", 1) }
    }
}

/// `EMBER_INJECT_FAILURE`: rank `rank` fails at step `step`.
public struct InjectedFailure: Error, Sendable, CustomStringConvertible {
    public let rank: Int, step: Int
    public var description: String { "injected failure on rank \(rank) at step \(step) (EMBER_INJECT_FAILURE)" }

    /// Throws itself when this is the rank and step it names.
    func check(rank: Int, step: Int) throws {
        if rank == self.rank && step == self.step { throw self }
    }
}
