import Ember
import EmberDistributed
import Foundation
import Logging
/// The result of a run, as written to `summary.json`.
public struct RunSummary: Codable, Equatable, FlatRecord {
    public var epochs: Int
    public var steps: Int
    public var trainLoss: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var worldSize: Int
    public var globalBatch: Int
    public var samplesPerSecond: Double
    public var wallSeconds: Double
    public var stoppedReason: String
    public var model: String
    public var parameters: Int
    public var runDir: String
    /// How gradients were combined: "single", "local" (threads), or over MPI "mpi", "shm"
    /// (shared memory) or "auto" (tuned between the two).
    public var transport: String
    /// With a tuned transport: how many trials chose shared memory, of how many.
    public var sharedMemoryTrials: String?
    public var shardedOptimizerStep: Bool
    /// What the products ran in (`fp32`, `bf16`) and what gradients travelled in between ranks,
    /// as this run (the last start of a resumed one) was given them.
    public var precision = "fp32"
    public var reduceDtype = "fp32"
    /// The last epoch's and the test's values of the task's own metrics (`val_tokens`,
    /// `test_perplexity`), written flat beside the fields above in `summary.json` (`FlatRecord`).
    public var extra: [String: Double] = [:]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case epochs, steps, model, parameters, transport, extra
        case trainLoss = "train_loss", valLoss = "val_loss", valAccuracy = "val_accuracy", testLoss = "test_loss"
        case testAccuracy = "test_accuracy", worldSize = "world_size", globalBatch = "global_batch"
        case samplesPerSecond = "samples_per_s", wallSeconds = "wall_s", stoppedReason = "stopped_reason", runDir = "run_dir"
        case shardedOptimizerStep = "sharded_optimizer_step", sharedMemoryTrials = "shared_memory_trials"
        case precision, reduceDtype = "reduce_dtype"
    }
}

/// Why a run ended early with a failure status.
public struct TrainingFailure: Error, CustomStringConvertible {
    public let description: String
    public let summary: RunSummary?
}
