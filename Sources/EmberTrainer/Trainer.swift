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

/// One line of `metrics.jsonl`: keys sorted, non-finite numbers as strings.
private let metricsEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return encoder
}()

/// Why a run's loop ended.
enum StopReason: CustomStringConvertible {
    case completed
    case interrupted
    case earlyStopping(monitor: String, minDelta: Double, patience: Int)
    case diverged(loss: Double, step: Int)
    /// A callback asked (`TrainingContext.requestStop`).
    case requested(String)

    var description: String {
        switch self {
        case .completed: return "completed"
        case .interrupted: return "interrupted by signal"
        case .earlyStopping(let monitor, let minDelta, let patience):
            return monitor == "val_loss" ? "early stopping: no validation improvement of \(minDelta) for \(patience) epochs"
                : "early stopping: no improvement of \(monitor) by \(minDelta) for \(patience) epochs"
        case .diverged(let loss, let step): return "loss became \(loss) at step \(step)"
        case .requested(let why): return why
        }
    }
}

/// One batch's numbers, summed over the ranks: the loss (times samples), the samples, whether
/// any rank asks to stop, and the task's metrics.
struct BatchStatistics {
    var lossSum = 0.0, samples = 0.0
    var stopSignal = false, stopRequest = false
    var metrics = MetricTotals()
}

/// A task's metrics accumulated over batches (and ranks): value and count per name.
struct MetricTotals {
    var values: [String: (value: Double, count: Double)] = [:]

    /// Sums (or extremes) of `other` into these, per each metric's reduction.
    mutating func add(_ other: [String: (value: Double, count: Double)], _ metrics: [Metric]) {
        for m in metrics {
            guard let v = other[m.name] else { continue }
            let old = values[m.name]
            switch m.reduction {
            case .mean, .sum, .exponentiatedMean: values[m.name] = ((old?.value ?? 0) + v.value, (old?.count ?? 0) + v.count)
            case .max: values[m.name] = (Swift.max(old?.value ?? -.infinity, v.value), (old?.count ?? 0) + v.count)
            case .min: values[m.name] = (Swift.min(old?.value ?? .infinity, v.value), (old?.count ?? 0) + v.count)
            }
        }
    }

    /// Each metric's value: the mean for `.mean`, the total or extreme otherwise (nil when never recorded).
    func value(_ m: Metric) -> Double? {
        guard let v = values[m.name], v.count > 0 else { return nil }
        switch m.reduction {
        case .mean: return v.value / v.count
        case .exponentiatedMean: return Foundation.exp(v.value / v.count)
        default: return v.value
        }
    }

    /// The totals of every rank, combined exactly: one allreduce of the sums and counts (and
    /// one more of the extremes when there are `.max`/`.min` metrics), the same on every rank.
    static func reduce(_ local: [String: (value: Double, count: Double)], _ metrics: [Metric], prefix: [Double],
                       comm: Communicator) throws -> (prefix: [Double], totals: MetricTotals) {
        var flat = prefix
        // Sums and counts travel in one allreduce (extremes' values in the next one).
        for m in metrics {
            let v = local[m.name]
            flat += [[.mean, .sum, .exponentiatedMean].contains(m.reduction) ? v?.value ?? 0 : 0, v?.count ?? 0]
        }
        let summed = try comm.allreduceSum(flat)
        var extremes: [Double] = []
        let extremeMetrics = metrics.filter { $0.reduction == .max || $0.reduction == .min }
        if !extremeMetrics.isEmpty {
            // The minimum is the negated maximum of the negated values.
            let mine = extremeMetrics.map { m -> Double in
                let v = local[m.name]?.value
                return m.reduction == .max ? v ?? -.infinity : -(v ?? .infinity)
            }
            extremes = try comm.allreduceMax(mine)
        }
        var totals = MetricTotals()
        var extremeIndex = 0
        for (i, m) in metrics.enumerated() {
            let count = summed[prefix.count + 2 * i + 1]
            guard count > 0 else { if m.reduction == .max || m.reduction == .min { extremeIndex += 1 }; continue }
            switch m.reduction {
            case .mean, .sum, .exponentiatedMean: totals.values[m.name] = (summed[prefix.count + 2 * i], count)
            case .max: totals.values[m.name] = (extremes[extremeIndex], count); extremeIndex += 1
            case .min: totals.values[m.name] = (-extremes[extremeIndex], count); extremeIndex += 1
            }
        }
        return (Array(summed.prefix(prefix.count)), totals)
    }

    /// As stored in checkpoints.
    var stored: [String: [Double]] { values.mapValues { [$0.value, $0.count] } }
    init() {}
    init(stored: [String: [Double]]) {
        for (k, v) in stored where v.count == 2 { values[k] = (v[0], v[1]) }
    }
}

/// One rank's side of a training run of any task. Every rank trains; rank 0 also decides when to
/// stop, adjusts the learning rate on plateaus, and writes checkpoints, metrics and reports.
/// `run()` is the loop; each phase (a batch, an epoch's end, the decision, the finish) has a
/// method of its own below it.
final class RankLoop<Task: TrainingTask> {
    let config: TrainerConfig
    let comm: Communicator
    let task: Task
    let runDir: String
    let log: Logger
    let settings: LaunchSettings
    var isCoordinator: Bool { comm.rank == 0 }

    let train: TaskData<Task.Batch>
    let val: TaskData<Task.Batch>?
    let test: TaskData<Task.Batch>?
    let metrics: [Metric]
    let model: Task.Model
    let ddp: DataParallel
    let optimizer: Optimizer
    let epochSchedule: EpochSchedule
    let perStepSchedule: StepSchedule
    var stepSchedule: OneCycleLR?
    var plateau: ReduceLROnPlateau?
    let dropoutGenerator: Generator
    /// The callbacks that run on this rank.
    let callbacks: [TrainingCallback]
    /// Every callback (the checkpointed states are indexed by position among these).
    let allCallbacks: [TrainingCallback]
    let context: TrainingContext

    // Loop state (all checkpointed).
    var epoch = 0, batchInEpoch = 0, globalStep = 0
    /// The best value of `config.monitor` so far.
    var bestMonitored: Double?
    var epochsWithoutImprovement = 0
    var epochLoss = (sum: 0.0, samples: 0.0)
    var epochMetrics = MetricTotals()
    var trainSamplesSeen = 0.0, trainSeconds = 0.0
    var history: [EpochRecord] = []
    var best: [BestCheckpoint] = []
    /// Whether this run continues from a checkpoint.
    private(set) var resumed = false
    /// The timeline (`--trace`), nil when not tracing.
    private var trace: TraceRecorder?
    /// `--deterministic`: how global batches split into micro-batches and over the ranks, and
    /// the ordered sum of their gradients.
    let plan: DeterministicPlan?
    let exactGradients: DeterministicGradients?

    init(config: TrainerConfig, comm: Communicator, task: Task, runDir: String, resume: LoadedCheckpoint?, log: Logger,
         settings: LaunchSettings, callbacks: [TrainingCallback]) throws {
        self.config = config
        self.settings = settings
        self.comm = comm
        self.task = task
        self.runDir = runDir
        self.log = log
        train = try task.trainingData()
        val = try task.validationData().flatMap { $0.count > 0 ? $0 : nil }
        test = try task.testData().flatMap { $0.count > 0 ? $0 : nil }
        metrics = task.metrics
        if comm.worldSize > train.count {
            throw ConfigError("\(comm.worldSize) ranks but only \(train.count) training samples: every rank needs at least one")
        }
        let generators = ModelGenerators(seed: config.seed, rank: comm.rank)
        dropoutGenerator = generators.dropout
        model = try task.makeModel(generators: generators)
        if let resume {
            // The task first: a task whose data means something else (another tokenizer) says so
            // by name before the weights' shapes would.
            if let state = resume.state.taskState { try task.restore(checkpointState: state) }
            try model.loadStateDict(resume.model)
        }
        var launch = settings.launch
        if launch.localSize == nil, let topology = comm as? NodeTopology, comm.worldSize > 1 { launch.localSize = topology.ranksOnThisNode }
        let overlap = config.overlap ?? launch.overlapPaysOff(threadsPerRank: numThreads, cores: ProcessInfo.processInfo.activeProcessorCount)
        plan = config.deterministic ? try DeterministicPlan(config, rank: comm.rank, worldSize: comm.worldSize) : nil
        ddp = try DataParallel(model, communicator: comm, bucketCapacityBytes: config.bucketKB * 1024, overlap: overlap,
                               shardOptimizerStep: config.deterministic ? false : config.shardOptimizer
                                   ?? DataParallel.shardingPaysOff(parameterCount: model.parameterCount, worldSize: comm.worldSize))
        exactGradients = config.deterministic ? try ddp.deterministicGradients() : nil
        optimizer = try task.makeOptimizer(model: model, options: config)
        epochSchedule = EpochSchedule(config: config)
        perStepSchedule = StepSchedule(config: config)
        allCallbacks = callbacks
        self.callbacks = callbacks.filter { $0.ranks == .everyRank || comm.rank == 0 }
        context = TrainingContext(rank: comm.rank, worldSize: comm.worldSize, model: model, optimizer: optimizer)
        makeSchedules()
        if let resume { try restore(resume) }
    }

    /// Batches in one pass over the training data (per rank).
    var dataBatchesPerEpoch: Int {
        if let plan { return train.count / plan.globalBatch }
        let perRank = (train.count + comm.worldSize - 1) / comm.worldSize
        return (perRank + config.batchSize - 1) / config.batchSize
    }

    /// Optimizer steps of an epoch. Training by steps (`maxSteps`), an epoch is the period
    /// between validations: `evalInterval` steps, or one pass over the data if that is shorter.
    var stepsPerEpoch: Int {
        let data = (dataBatchesPerEpoch + config.gradAccumulation - 1) / config.gradAccumulation
        return config.maxSteps == nil ? data : min(config.evalInterval, data)
    }

    /// Epochs (periods between validations, training by steps) the run has.
    var totalEpochs: Int { config.maxSteps.map { ($0 + stepsPerEpoch - 1) / stepsPerEpoch } ?? config.epochs }

    /// Batches of epoch `epoch` (the last period of a run by steps may be shorter).
    func batches(inEpoch e: Int) -> Int {
        guard let maxSteps = config.maxSteps else { return dataBatchesPerEpoch }
        return min(dataBatchesPerEpoch, max(0, min(stepsPerEpoch, maxSteps - e * stepsPerEpoch)) * config.gradAccumulation)
    }

    var batchesPerEpoch: Int { batches(inEpoch: epoch) }

    /// Whether larger values of the monitored metric are better.
    var monitorHigherIsBetter: Bool {
        let name = config.monitor.drop { $0 != "_" }.dropFirst()
        return metrics.first { $0.name == name }?.higherIsBetter ?? false
    }

    private func makeSchedules() {
        switch config.schedule {
        case "onecycle": stepSchedule = OneCycleLR(optimizer: optimizer, maxLR: config.lr, totalSteps: config.maxSteps ?? stepsPerEpoch * config.epochs)
        case "plateau": plateau = ReduceLROnPlateau(optimizer: optimizer, mode: monitorHigherIsBetter ? .max : .min, factor: 0.5, patience: 2)
        default: break
        }
    }

    private func restore(_ c: LoadedCheckpoint) throws {
        let s = c.state
        resumed = true
        try optimizer.loadStateDict(tensors: c.optimizer, groups: s.optimizerGroups)
        if let e = s.schedulerEpoch { stepSchedule?.restore(epoch: e) }
        for (g, values) in zip(optimizer.paramGroups, s.optimizerGroups) { g.learningRate = values["lr"] ?? g.learningRate }
        if let p = s.plateau { plateau?.restore(best: p.best, badEpochs: p.badEpochs, cooldown: p.cooldown) }
        bestMonitored = s.bestValLoss
        epochsWithoutImprovement = s.epochsWithoutImprovement
        history = s.history
        trainSamplesSeen = s.trainSamplesSeen
        trainSeconds = s.trainSeconds
        globalStep = s.globalStep
        epoch = s.epoch
        best = s.best ?? []
        for (callback, state) in zip(allCallbacks, s.callbackStates ?? []) where callback.ranks == .everyRank || isCoordinator {
            if let state { try callback.restore(checkpointState: state) }
        }
        epochLoss = (s.epochSums[0], s.epochSums[2])
        // Older checkpoints kept only the correct count, as the accuracy's sum.
        epochMetrics = s.epochMetrics.map(MetricTotals.init(stored:))
            ?? MetricTotals(stored: metrics.contains(.accuracy) && s.epochSums[2] > 0 ? ["accuracy": [s.epochSums[1], s.epochSums[2]]] : [:])
        if s.worldSize == comm.worldSize || plan != nil {
            // (A deterministic run counts global batches, the same on any world size.)
            batchInEpoch = s.batchInEpoch
            if comm.rank < s.generatorStates.count { dropoutGenerator.stateWords = s.generatorStates[comm.rank] }
        } else {
            // The data order depends on the world size: continue from the same point of the epoch.
            let seen = Double(s.batchInEpoch * s.config.batchSize * s.worldSize)
            batchInEpoch = min(batchesPerEpoch, Int((seen / Double(config.batchSize * comm.worldSize)).rounded(.up)))
            if isCoordinator {
                log.notice("resuming a run trained on \(s.worldSize) ranks with \(comm.worldSize): global batch \(s.config.batchSize * s.worldSize) → \(config.batchSize * comm.worldSize); the data order from here on differs from an uninterrupted run")
            }
        }
        if isCoordinator {
            log.info("resumed from \(c.path) (epoch \(s.epoch + 1), step \(s.globalStep)\(s.batchInEpoch > 0 ? ", batch \(s.batchInEpoch) of the epoch" : ""))")
        }
    }

    // MARK: The loop

    func run() throws -> RunSummary {
        let start = Date()
        let sampler: Sampler = plan.map { MicroBatchSampler(datasetCount: train.count, plan: $0, seed: config.seed) }
            ?? DistributedSampler(count: train.count, rank: comm.rank, worldSize: comm.worldSize, shuffle: true, seed: config.seed)
        // Deterministic steps gather their micro-batches themselves: the loader hands out indices.
        let loader = BatchLoader(sampler: sampler, batchSize: plan.map { $0.perRank * $0.microBatch } ?? config.batchSize,
                                 make: { [plan, train] indices in plan == nil ? train.batch(indices) : nil })
        var progress = ProgressReporter(interactive: settings.interactive, logInterval: config.logInterval, totalEpochs: totalEpochs,
                                        maxSteps: config.maxSteps, unit: train.unit)
        var stop: StopReason = .completed
        if isCoordinator { announce() }
        if let dir = config.trace { try startTrace(dir) }
        if resumed || config.resume == "auto" {
            // Lines of epochs after the checkpoint (a run that died) would be written again.
            try Trainer.onRankZero(comm) { try writing("metrics.jsonl") { try rewriteMetrics() } }
        }

        training: while epoch < totalEpochs {
            model.train()
            if let lr = epochSchedule.learningRate(epoch: epoch) { optimizer.learningRate = lr }
            loader.setEpoch(epoch)
            let epochStart = Date()
            var batch = 0, micro = 0
            let batches = loader.makeIterator()
            while true {
                let waitStart = trace == nil ? 0 : TraceRecorder.now()
                guard batch < batchesPerEpoch, let (indices, samples) = batches.next() else { break }
                batch += 1
                if batch <= batchInEpoch { continue }  // resuming inside this epoch
                trace?.span("next batch", "data", waitStart)
                let stepStart = Date()
                let last = batch == batchesPerEpoch
                micro += 1
                let boundary = micro == config.gradAccumulation || last
                try settings.injectedFailure?.check(rank: comm.rank, step: globalStep)
                let local = try plan.map { plan in try measure("deterministic step", "step") { try deterministicBatch(indices: indices, plan: plan) } }
                    ?? trainBatch(samples!, count: train.weight(of: indices), synchronize: boundary)
                if boundary {
                    micro = 0
                    if let lr = perStepSchedule.learningRate(step: globalStep) { optimizer.learningRate = lr }
                    try measure("optimizer step", "optimizer") {
                        if plan != nil {
                            // Every rank holds the same summed gradients and takes the same step.
                            if let c = config.clipValue { GradClip.clipValue(model.parameters(), clipValue: c) }
                            if let c = config.clipNorm { GradClip.clipNorm(model.parameters(), maxNorm: c) }
                            optimizer.step()
                        } else {
                            try ddp.step(optimizer, clipNorm: config.clipNorm, clipValue: config.clipValue)
                        }
                    }
                    optimizer.zeroGrad()
                    stepSchedule?.step()
                    globalStep += 1
                }
                // One small allreduce per batch: exact global loss and metrics, and agreement on a stop.
                let g = try plan == nil ? measure("metrics (waiting for every rank)", "sync") { try reduce(local) } : local
                trace?.span("batch \(batch)", "step", waitStart, args: ["step": Double(globalStep)])
                if let failure = trace?.stepEnded() { stopTrace(failure) }
                epochLoss.sum += g.lossSum
                epochLoss.samples += g.samples
                epochMetrics.add(g.metrics.values, metrics)
                trainSamplesSeen += g.samples
                trainSeconds += Date().timeIntervalSince(stepStart)
                batchInEpoch = batch
                let runningLoss = epochLoss.sum / max(epochLoss.samples, 1)
                let batchLoss = g.lossSum / max(g.samples, 1)
                if !batchLoss.isFinite {
                    stop = .diverged(loss: batchLoss, step: globalStep)
                    break training
                }
                if isCoordinator {
                    progress.step(epoch: epoch, batch: batch, batches: batchesPerEpoch, step: globalStep, loss: runningLoss,
                                  samplesPerSecond: trainSamplesSeen / max(trainSeconds, 1e-9), elapsed: Date().timeIntervalSince(epochStart))
                }
                if boundary {
                    context.epoch = epoch
                    context.step = globalStep
                    context.metrics = ["train_loss": runningLoss]
                    for c in callbacks { c.stepEnded(context) }
                }
                if (g.stopSignal || g.stopRequest) && boundary && !last {
                    stop = g.stopSignal ? .interrupted : .requested(agreedRequest())
                    break training
                }
            }
            if isCoordinator { progress.endEpoch() }
            let record = try finishEpoch(seconds: Date().timeIntervalSince(epochStart))
            epoch += 1
            batchInEpoch = 0
            epochLoss = (0, 0)
            epochMetrics = MetricTotals()
            let decision = try decide(record)
            // The last epoch always ends with a checkpoint (also with --checkpoint-interval 0), so
            // resuming a finished run has nothing left to do.
            let last = decision.stop || epoch == totalEpochs
            if last || (config.checkpointInterval > 0 && epoch % config.checkpointInterval == 0) {
                try saveCheckpoint(reason: "epoch", record: record)
            }
            // Every rank takes part, whether or not it got the signal (or a callback asked) itself.
            let flags = try comm.allreduceSum([StopSignal.received != 0 ? 1 : 0, context.stopReason != nil ? 1 : 0])
            if flags[0] > 0 {
                stop = .interrupted
                break
            }
            if decision.stop {
                stop = .earlyStopping(monitor: config.monitor, minDelta: config.minDelta, patience: config.patience ?? 0)
                break
            }
            if flags[1] > 0 {
                stop = .requested(agreedRequest())
                break
            }
        }

        if case .interrupted = stop {
            try saveCheckpoint(reason: "signal", record: nil)
            StopSignal.checkpointSaved()
            if isCoordinator {
                log.notice("stopping on a signal: checkpoint written to \(Checkpoints.directory(runDir: runDir)); continue with --resume latest --run-dir \(runDir)")
            }
        }
        let summary = try finish(stop: stop, wall: Date().timeIntervalSince(start))
        if case .diverged = stop { throw TrainingFailure(description: "training stopped: \(stop)", summary: summary) }
        return summary
    }

    /// Rank 0 says how the job sits on the machine, and every rank proves it runs the same
    /// program with the same options and weights: one allgather of three checksums (the
    /// executable, the configuration, the weights after rank 0's were broadcast). A rank that
    /// differs is an error naming it.
    func startupCheck() throws {
        let state = model.stateDict()
        let weights = state.keys.sorted().reduce(UInt32(0)) { crc, key in
            let t = state[key]!
            return crc &* 31 &+ Checksum.crc32(Data(bytes: t.dataPointer, count: t.count * t.dtype.byteSize))
        }
        let mine = [Double(RankLoop.executableChecksum), Double(Checksum.crc32(config.json())), Double(weights)]
        let all = try comm.allgather(mine)
        for (i, what) in ["executable", "configuration", "weights after the broadcast"].enumerated() {
            let differing = all.indices.filter { all[$0][i] != all[0][i] }
            if !differing.isEmpty {
                throw ConfigError("start-up check: rank\(differing.count == 1 ? "" : "s") \(differing.map(String.init).joined(separator: ", ")) \(differing.count == 1 ? "has" : "have") another \(what) than rank 0; every rank must run the same build with the same options")
            }
        }
        guard isCoordinator else { return }
        let topology = comm as? NodeTopology
        let perNode = topology?.ranksOnThisNode ?? 1, nodes = topology?.nodes ?? 1
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let load = perNode * numThreads > cores ? " (more threads than cores: ranks will wait for each other"
            + (MPICommunicator.yieldsWhenIdle ? ", yielding their cores while they do: OMPI_MCA_mpi_yield_when_idle=1)" : ")") : ""
        log.info("start-up check: \(comm.worldSize) rank\(comm.worldSize == 1 ? "" : "s") on \(nodes) node\(nodes == 1 ? "" : "s") (\(perNode) on this one), \(numThreads) product thread\(numThreads == 1 ? "" : "s") per rank on \(cores) cores\(load)")
        log.info("\(String(format: "start-up check: executable %08x, configuration %08x, weights %08x: the same on every rank", UInt32(mine[0]), UInt32(mine[1]), UInt32(mine[2])))")
    }

    /// CRC-32 of this program's file (0 where it cannot be read).
    static var executableChecksum: UInt32 {
        (try? Data(contentsOf: URL(fileURLWithPath: "/proc/self/exe"))).map(Checksum.crc32) ?? 0
    }

    /// What the run says at its start (rank 0).
    private func announce() {
        let globalBatch = config.batchSize * comm.worldSize
        if let notice = (task as? PresetTask)?.data.notice { log.notice("\(notice)") }
        log.info("training \(task.name) (\(model.parameterCount) parameters)\((task as? PresetTask).map { " on \($0.data.source)" } ?? ""): \(train.count) train, \(val?.count ?? 0) validation, \(test?.count ?? 0) test samples")
        log.info("world \(comm.worldSize) (\(comm.backendName)), batch \(config.batchSize) per rank = \(globalBatch) global\(config.gradAccumulation > 1 ? " × \(config.gradAccumulation) accumulated" : ""), \(batchesPerEpoch) batches per epoch, optimizer \(config.optimizer) lr \(config.lr)")
        if comm.worldSize > 1 {
            let sharding = ddp.shardsOptimizerStep ? "; optimizer step sharded over the ranks (reduce-scatter, update a shard, allgather)" : ""
            let transport = switch (comm as? TransportSelecting)?.transportName {
            case "auto": " through shared memory or MPI's transport, whichever makes steps faster (tried again every 500 steps)"
            case "shm": " through shared memory (one node)"
            case "shm+mpi": " through shared memory within each node and MPI between nodes"
            default: ""
            }
            log.info("gradients: \(ddp.bucketSizes.count) allreduce bucket(s) of up to \(config.bucketKB) KiB, \(ddp.overlap ? "overlapped with backward" : "after backward (ranks fill this node's cores)")\(transport)\(sharding)")
        }
    }

    /// Forward and backward of one batch of `count` samples: this rank's loss sum and metrics.
    private func trainBatch(_ batch: Task.Batch, count: Double, synchronize: Bool) throws -> BatchStatistics {
        let forwardBackward = { () throws -> BatchStatistics in
            var log = MetricLog(self.metrics)
            try self.ddp.broadcastBuffersForTraining()
            let loss = self.measure("forward", "forward") { self.task.trainingStep(model: self.model, batch: batch, log: &log) }
            self.measure("backward", "backward") { (loss / Float(self.config.gradAccumulation)).backward() }
            var s = BatchStatistics()
            s.lossSum = loss.doubleItem() * count
            s.samples = count
            s.metrics.values = log.values
            return s
        }
        var s = synchronize ? try forwardBackward() : try ddp.noSync(forwardBackward)
        s.stopSignal = StopSignal.received != 0
        s.stopRequest = context.stopReason != nil
        return s
    }

    /// The batch's statistics summed over the ranks.
    private func reduce(_ local: BatchStatistics) throws -> BatchStatistics {
        let prefix = [local.lossSum, local.samples, local.stopSignal ? 1 : 0, local.stopRequest ? 1 : 0]
        let (p, totals) = try MetricTotals.reduce(local.metrics.values, metrics, prefix: prefix, comm: comm)
        return BatchStatistics(lossSum: p[0], samples: p[1], stopSignal: p[2] > 0, stopRequest: p[3] > 0, metrics: totals)
    }

    /// The reason a callback gave for stopping: rank 0's, or a note that another rank asked.
    private func agreedRequest() -> String {
        context.stopReason ?? "stop requested by a callback on another rank"
    }

    /// Global loss and metrics of a split; each rank evaluates its share, no sample twice.
    func evaluate(_ split: TaskData<Task.Batch>) throws -> (loss: Double, metrics: MetricTotals) {
        if plan != nil { return try deterministicEvaluate(split) }
        model.eval()
        defer { model.train() }
        return try SplitEvaluation.run(task, model: model, split: split, comm: comm, batchSize: max(config.batchSize, 256))
    }

    /// Times `body` as a span of the timeline when tracing.
    private func measure<R>(_ name: String, _ category: String, _ body: () throws -> R) rethrows -> R {
        guard let trace else { return try body() }
        return try trace.measure(name, category, body)
    }

    /// The timeline: the recorder (clocks aligned at a barrier), and the reductions' own spans.
    private func startTrace(_ dir: String) throws {
        let recorder = try TraceRecorder(directory: dir, steps: config.traceSteps, comm: comm)
        trace = recorder
        if let failure = recorder.failure { return stopTrace(failure) }
        ddp.observer = { [unowned recorder] event in
            switch event {
            case .bucket(let i, let start, let end, let overlapped):
                recorder.span("reduce bucket \(i)", "reduce", start, end, thread: overlapped ? 1 : 0)
            case .wait(let start, let end):
                recorder.span("wait for reductions", "wait", start, end)
            }
        }
        if isCoordinator { log.info("tracing the first \(config.traceSteps) batches into \(dir)") }
    }

    /// A timeline that cannot be written stops; the run goes on (a side feature never costs it).
    private func stopTrace(_ why: String) {
        log.warning("--trace stopped: \(why); training goes on without a timeline")
        ddp.observer = nil
        trace = nil
    }

    /// The end of a traced run: every rank's file complete, then rank 0 merges them and says
    /// where the time went. Every rank takes part even when its own timeline stopped early (the
    /// merge is collective); a failure is a warning, never the run's.
    private func finishTrace() {
        guard let dir = config.trace else { return }
        trace?.flush()
        if let failure = trace?.failure { stopTrace(failure) }
        ddp.observer = nil
        do {
            try comm.barrier()
            try Trainer.onRankZero(comm) {
                let merged = try TraceRecorder.merge(directory: dir)
                Console.writeLine("trace: \(merged) (open it in Perfetto or chrome://tracing)")
                Console.writeLine(try TraceSummary.table(directory: dir))
                try AtomicFile.write(Data(try TraceSummary.svg(directory: dir).utf8), to: (runDir as NSString).appendingPathComponent("timeline.svg"))
            }
        } catch {
            if isCoordinator { log.warning("--trace: no timeline written: \((error as? SharedError)?.underlying ?? error); the run's results are unaffected") }
        }
    }

    /// Validation, the epoch's record, its line and `metrics.jsonl`.
    private func finishEpoch(seconds: Double) throws -> EpochRecord {
        let v = try val.map { split in try measure("validation", "validation") { try evaluate(split) } }
        if v != nil {
            context.metrics = ["val_loss": v!.loss]
            for m in metrics { if let x = v!.metrics.value(m) { context.metrics["val_\(m.name)"] = x } }
            for c in callbacks { c.validationEnded(context) }
        }
        var extra: [String: Double] = [:]
        for m in metrics where m != .accuracy {
            if let x = epochMetrics.value(m) { extra["train_\(m.name)"] = x }
            if let x = v?.metrics.value(m) { extra["val_\(m.name)"] = x }
        }
        if train.unit != "samples" { extra["\(train.unit)_per_s"] = epochLoss.samples / max(seconds, 1e-9) }
        let record = EpochRecord(epoch: epoch, step: globalStep, trainLoss: epochLoss.sum / max(epochLoss.samples, 1),
                                 trainAccuracy: metrics.contains(.accuracy) ? epochMetrics.value(.accuracy) ?? 0 : nil,
                                 valLoss: v?.loss, valAccuracy: metrics.contains(.accuracy) ? v?.metrics.value(.accuracy) : nil,
                                 lr: optimizer.learningRate, epochSeconds: seconds,
                                 samplesPerSecond: epochLoss.samples / max(seconds, 1e-9), extra: extra)
        history.append(record)
        if isCoordinator {
            var line = config.maxSteps.map { String(format: "step %d/%d  train loss %.4f", globalStep, $0, record.trainLoss) }
                ?? String(format: "epoch %d/%d  train loss %.4f", epoch + 1, config.epochs, record.trainLoss)
            if let a = record.trainAccuracy { line += String(format: " acc %.4f", a) }
            if let v = record.valLoss { line += String(format: "  val loss %.4f", v) }
            if let a = record.valAccuracy { line += String(format: " acc %.4f", a) }
            for k in extra.keys.sorted() where !k.hasSuffix("_per_s") { line += String(format: "  %@ %.4g", k, extra[k]!) }
            line += String(format: "  lr %.4g  %.1fs  %.0f %@/s", record.lr, seconds, record.samplesPerSecond, train.unit)
            Console.writeLine(line)
        }
        try Trainer.onRankZero(comm) { try writing("metrics.jsonl") { try appendMetrics(record) } }
        context.epoch = epoch
        context.step = globalStep
        context.metrics = record.values
        for c in callbacks { c.epochEnded(context) }
        return record
    }

    /// Rank 0 decides from exact global metrics (early stopping, the plateau schedule) and every
    /// rank follows its decision and learning rate.
    private func decide(_ record: EpochRecord) throws -> (stop: Bool, lr: Double) {
        var decision = [0.0, optimizer.learningRate]
        if isCoordinator { decision = [coordinatorWantsToStop(record) ? 1 : 0, optimizer.learningRate] }
        decision = try comm.broadcast(decision, root: 0)
        optimizer.learningRate = decision[1]
        return (decision[0] != 0, decision[1])
    }

    private func coordinatorWantsToStop(_ record: EpochRecord) -> Bool {
        guard let value = record.values[config.monitor] else { return false }
        plateau?.step(value)
        let better = monitorHigherIsBetter ? bestMonitored.map { value > $0 + config.minDelta } : bestMonitored.map { value < $0 - config.minDelta }
        if better ?? true {
            bestMonitored = value
            epochsWithoutImprovement = 0
        } else {
            epochsWithoutImprovement += 1
        }
        if let patience = config.patience, epochsWithoutImprovement > patience {
            log.notice("early stopping after epoch \(epoch + 1): \(config.monitor == "val_loss" ? "validation loss" : config.monitor) has not improved for \(epochsWithoutImprovement) epochs")
            return true
        }
        return false
    }

    // MARK: Files (rank 0)

    private func metricsLine(_ record: EpochRecord) throws -> Data {
        var line = try metricsEncoder.encode(record)
        line.append(0x0a)
        return line
    }

    private func appendMetrics(_ record: EpochRecord) throws {
        try AtomicFile.append(metricsLine(record), to: (runDir as NSString).appendingPathComponent("metrics.jsonl"))
    }

    /// `metrics.jsonl` as the checkpoint's history says (atomically): the epochs up to it, once.
    private func rewriteMetrics() throws {
        var all = Data()
        for record in history { all.append(try metricsLine(record)) }
        try AtomicFile.write(all, to: (runDir as NSString).appendingPathComponent("metrics.jsonl"))
    }

    /// Runs rank 0's write of `what`, turning a failure into an `IOFailure` that names it.
    private func writing(_ what: String, _ body: () throws -> Void) throws {
        do { try body() } catch { throw IOFailure("could not write \(what) in \(runDir): \(error)") }
    }

    /// A checkpoint (collective: every rank's generator state, and the optimizer state when the
    /// step is sharded, are gathered); `record` is the epoch that just ended, for `keepBest`.
    func saveCheckpoint(reason: String, record: EpochRecord?) throws {
        try measure("checkpoint", "checkpoint") { try writeCheckpointCollectively(reason: reason, record: record) }
    }

    private func writeCheckpointCollectively(reason: String, record: EpochRecord?) throws {
        // Every rank's generator state travels to rank 0 as 32-bit halves (exact in a Double).
        let words = dropoutGenerator.stateWords.flatMap { [Double($0 >> 32), Double($0 & 0xffff_ffff)] }
        let gathered = try comm.allgather(words)
        let states = gathered.map { w in stride(from: 0, to: w.count, by: 2).map { UInt64(w[$0]) << 32 | UInt64(w[$0 + 1]) } }
        let opt = try ddp.optimizerStateDict(optimizer)  // collective when the step is sharded
        try Trainer.onRankZero(comm) {
            try writing("a checkpoint") {
                let path = try writeCheckpoint(reason: reason, states: states, opt: opt, record: record)
                context.epoch = epoch
                context.step = globalStep
                for c in callbacks { c.checkpointSaved(context, path: path) }
            }
        }
    }

    private func writeCheckpoint(reason: String, states: [[UInt64]], opt: (tensors: [String: Tensor], groups: [[String: Double]]),
                                 record: EpochRecord?) throws -> String {
        let name = String(format: "step-%08d", globalStep) + (batchInEpoch > 0 ? "-partial" : "")
        if config.keepBest > 0, let record, let value = record.values[config.monitor], value.isFinite {
            best.removeAll { $0.name == name }
            best.append(BestCheckpoint(name: name, value: value))
            best.sort { monitorHigherIsBetter ? $0.value > $1.value : $0.value < $1.value }
            best = Array(best.prefix(config.keepBest))
        }
        let state = CheckpointState(
            epoch: epoch, batchInEpoch: batchInEpoch, globalStep: globalStep, worldSize: comm.worldSize, config: config,
            optimizerGroups: opt.groups, schedulerEpoch: stepSchedule?.lastEpoch,
            plateau: plateau.map { PlateauState(best: $0.best, badEpochs: $0.badEpochs, cooldown: $0.cooldownCounter) },
            bestValLoss: bestMonitored, epochsWithoutImprovement: epochsWithoutImprovement, generatorStates: states,
            epochSums: [epochLoss.sum, epochMetrics.values["accuracy"]?.value ?? 0, epochLoss.samples],
            epochMetrics: epochMetrics.stored, taskState: try task.checkpointState(),
            callbackStates: try allCallbacks.map { try $0.checkpointState() }, best: best,
            trainSamplesSeen: trainSamplesSeen, trainSeconds: trainSeconds, history: history,
            reason: reason, createdAt: ISO8601DateFormatter().string(from: Date()))
        let path = try Checkpoints.save(runDir: runDir, state: state, model: model.stateDict(), optimizer: opt.tensors,
                                        keepLast: config.keepLast, keep: Set(best.map(\.name)))
        log.debug("checkpoint written: \(path)")
        return path
    }

    private func finish(stop: StopReason, wall: Double) throws -> RunSummary {
        finishTrace()
        let t = try test.map { try evaluate($0) }
        let last = history.last
        var extra: [String: Double] = last?.extra ?? [:]
        for m in metrics where m != .accuracy { if let x = t?.metrics.value(m) { extra["test_\(m.name)"] = x } }
        let summary = RunSummary(
            epochs: history.count, steps: globalStep, trainLoss: last?.trainLoss ?? .nan, valLoss: last?.valLoss,
            valAccuracy: last?.valAccuracy, testLoss: t?.loss, testAccuracy: metrics.contains(.accuracy) ? t?.metrics.value(.accuracy) : nil,
            worldSize: comm.worldSize, globalBatch: config.batchSize * comm.worldSize,
            samplesPerSecond: trainSamplesSeen / max(trainSeconds, 1e-9), wallSeconds: wall, stoppedReason: "\(stop)",
            model: task.name, parameters: model.parameterCount, runDir: runDir,
            transport: comm.transportDescription,
            sharedMemoryTrials: ddp.transportTrials.map { "\($0.sharedMemory) of \($0.trials)" },
            shardedOptimizerStep: ddp.shardsOptimizerStep, extra: extra)
        try Trainer.onRankZero(comm) { try writing("the run's results") { try writeResults(summary) } }
        guard isCoordinator else { return summary }
        var line = "done: \(history.count) epochs, \(globalStep) steps, train loss \(String(format: "%.4f", summary.trainLoss))"
        if let v = summary.valAccuracy { line += String(format: ", val accuracy %.4f", v) }
        if let t = summary.testAccuracy { line += String(format: ", test accuracy %.4f", t) }
        if let t = summary.testLoss, summary.testAccuracy == nil { line += String(format: ", test loss %.4f", t) }
        line += String(format: ", %.0f %@/s, %.1fs (%@)", summary.samplesPerSecond, train.unit, wall, "\(stop)")
        Console.writeLine(line)
        Console.writeLine("run directory: \(runDir) (summary.json, metrics.jsonl, report.html\(wroteFinalWeights ? ", final.safetensors" : ""))")
        return summary
    }

    /// Whether `final.safetensors` was written (not when the weights are not finite).
    private var wroteFinalWeights = false

    /// `final.safetensors` (only of finite weights: a diverged run never replaces good ones),
    /// `summary.json` and the report.
    private func writeResults(_ summary: RunSummary) throws {
        let weights = model.stateDict()
        let finite = weights.values.allSatisfy { !$0.dtype.isFloatingPoint || $0.doubleScalars.allSatisfy(\.isFinite) }
        if finite {
            // The task's state (a language model's tokenizer) travels with the weights.
            var metadata = ["format": "pt", "model": task.name]
            if let state = try task.checkpointState(), let text = String(data: state, encoding: .utf8) { metadata["task_state"] = text }
            try Safetensors.save(weights, metadata: metadata,
                                 to: (runDir as NSString).appendingPathComponent("final.safetensors"))
            wroteFinalWeights = true
        } else {
            log.warning("the weights are not finite; final.safetensors was not written (the checkpoints hold the last good weights)")
        }
        let json = try Checkpoints.encoder.encode(summary)
        try AtomicFile.write(json, to: (runDir as NSString).appendingPathComponent("summary.json"))
        try AtomicFile.write(Data(Report.svg(history: history, testAccuracy: summary.testAccuracy).utf8),
                             to: (runDir as NSString).appendingPathComponent("report.svg"))
        let object = (try JSONSerialization.jsonObject(with: json) as? [String: Any]) ?? [:]
        try AtomicFile.write(Data(Report.html(summary: object, timeline: config.trace != nil).utf8),
                             to: (runDir as NSString).appendingPathComponent("report.html"))
    }
}


/// The per-epoch learning rate of `--schedule step|cosine|none` with an optional linear warm-up,
/// from the library's schedules (`LinearLR`, then `StepLR` or `CosineAnnealingLR`) in their closed
/// forms, so a resumed run needs only the epoch number. The schedules drive an optimizer of their
/// own with no parameters; the trainer copies the rate.
struct EpochSchedule {
    let kind: ScheduleName, base: Double, warmup: Int, bySteps: Bool
    private let warmupSchedule: LinearLR?
    private let main: LRScheduler?

    init(config: TrainerConfig) {
        kind = config.schedule
        bySteps = config.maxSteps != nil
        base = config.lr
        warmup = config.warmupEpochs
        let shadow = { Optimizer(paramGroups: [ParamGroup(params: [], learningRate: config.lr)]) }
        let span = max(1, config.epochs - config.warmupEpochs)
        warmupSchedule = warmup > 0 ? LinearLR(optimizer: shadow(), startFactor: 0.1, endFactor: 1, totalIters: warmup) : nil
        switch kind {
        case .step: main = StepLR(optimizer: shadow(), stepSize: max(1, span / 3), gamma: 0.1)
        case .cosine: main = CosineAnnealingLR(optimizer: shadow(), tMax: span)
        default: main = nil
        }
    }

    /// nil when another schedule (one-cycle, plateau, or any when training by steps) owns the
    /// rate, or none does (`none` after any warm-up: the rate is the options' `lr` unless a
    /// callback changes it).
    func learningRate(epoch: Int) -> Double? {
        guard [.none, .step, .cosine].contains(kind) && !bySteps else { return nil }
        if epoch < warmup, let warmupSchedule { return warmupSchedule.closedFormLR(epoch: epoch)![0] }
        if epoch == warmup && warmup > 0 && main == nil { return base }
        return main?.closedFormLR(epoch: epoch - warmup)![0]
    }
}

/// Training by steps (`maxSteps`): the learning rate of each optimizer step, as nanoGPT's
/// `get_lr`: a linear warm-up `lr·(s+1)/(w+1)` over `warmupSteps`, then `cosine` from `lr`
/// down to `minLr` at the last step (nanoGPT reaches it one step later), `step` (÷10 at each third) or `none` (constant). One-cycle
/// and plateau keep their own.
struct StepSchedule {
    let kind: ScheduleName, lr: Double, minLr: Double, warmup: Int, total: Int?

    init(config: TrainerConfig) {
        kind = config.schedule
        lr = config.lr
        minLr = config.minLr ?? config.lr / 10
        warmup = config.warmupSteps
        total = config.maxSteps
    }

    /// The rate of step `s` (0-based), nil when not training by steps or another schedule owns it.
    func learningRate(step s: Int) -> Double? {
        guard let total, [.none, .step, .cosine].contains(kind) else { return nil }
        if s < warmup { return lr * Double(s + 1) / Double(warmup + 1) }
        // The cosine reaches `minLr` at the last step (total - 1).
        let span = max(1, total - 1 - warmup), into = Double(min(s - warmup, span)) / Double(span)
        switch kind {
        case .cosine: return minLr + 0.5 * (1 + cos(Double.pi * into)) * (lr - minLr)
        case .step: return lr * pow(0.1, Double(min(2, Int(into * 3))))
        default: return lr
        }
    }
}
