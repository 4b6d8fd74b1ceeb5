import Ember
import EmberDistributed
import Foundation
import Logging
/// The result of a run, as written to `summary.json`.
public struct RunSummary: Codable, Equatable {
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
    /// The last epoch's and the test's values of the task's own metrics (`val_tokens`,
    /// `test_perplexity`), written flat beside the fields above.
    public var extra: [String: Double] = [:]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case epochs, steps, model, parameters, transport
        case trainLoss = "train_loss", valLoss = "val_loss", valAccuracy = "val_accuracy", testLoss = "test_loss"
        case testAccuracy = "test_accuracy", worldSize = "world_size", globalBatch = "global_batch"
        case samplesPerSecond = "samples_per_s", wallSeconds = "wall_s", stoppedReason = "stopped_reason", runDir = "run_dir"
        case shardedOptimizerStep = "sharded_optimizer_step", sharedMemoryTrials = "shared_memory_trials"
    }
}

extension RunSummary {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epochs = try c.decode(Int.self, forKey: .epochs)
        steps = try c.decode(Int.self, forKey: .steps)
        trainLoss = try c.decode(Double.self, forKey: .trainLoss)
        valLoss = try c.decodeIfPresent(Double.self, forKey: .valLoss)
        valAccuracy = try c.decodeIfPresent(Double.self, forKey: .valAccuracy)
        testLoss = try c.decodeIfPresent(Double.self, forKey: .testLoss)
        testAccuracy = try c.decodeIfPresent(Double.self, forKey: .testAccuracy)
        worldSize = try c.decode(Int.self, forKey: .worldSize)
        globalBatch = try c.decode(Int.self, forKey: .globalBatch)
        samplesPerSecond = try c.decode(Double.self, forKey: .samplesPerSecond)
        wallSeconds = try c.decode(Double.self, forKey: .wallSeconds)
        stoppedReason = try c.decode(String.self, forKey: .stoppedReason)
        model = try c.decode(String.self, forKey: .model)
        parameters = try c.decode(Int.self, forKey: .parameters)
        runDir = try c.decode(String.self, forKey: .runDir)
        transport = try c.decode(String.self, forKey: .transport)
        sharedMemoryTrials = try c.decodeIfPresent(String.self, forKey: .sharedMemoryTrials)
        shardedOptimizerStep = try c.decode(Bool.self, forKey: .shardedOptimizerStep)
        extra = try AnyKey.extras(from: decoder, besides: CodingKeys.allCases.map(\.rawValue))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(steps, forKey: .steps)
        try c.encode(trainLoss, forKey: .trainLoss)
        try c.encodeIfPresent(valLoss, forKey: .valLoss)
        try c.encodeIfPresent(valAccuracy, forKey: .valAccuracy)
        try c.encodeIfPresent(testLoss, forKey: .testLoss)
        try c.encodeIfPresent(testAccuracy, forKey: .testAccuracy)
        try c.encode(worldSize, forKey: .worldSize)
        try c.encode(globalBatch, forKey: .globalBatch)
        try c.encode(samplesPerSecond, forKey: .samplesPerSecond)
        try c.encode(wallSeconds, forKey: .wallSeconds)
        try c.encode(stoppedReason, forKey: .stoppedReason)
        try c.encode(model, forKey: .model)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(runDir, forKey: .runDir)
        try c.encode(transport, forKey: .transport)
        try c.encodeIfPresent(sharedMemoryTrials, forKey: .sharedMemoryTrials)
        try c.encode(shardedOptimizerStep, forKey: .shardedOptimizerStep)
        try AnyKey.encode(extra, to: encoder)
    }
}

/// Why a run ended early with a failure status.
public struct TrainingFailure: Error, CustomStringConvertible {
    public let description: String
    public let summary: RunSummary?
}
