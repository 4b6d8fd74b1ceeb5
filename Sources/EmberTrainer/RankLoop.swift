import Ember
import EmberDistributed
import Foundation
import Logging
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
    var trace: TraceRecorder?
    /// Whether `final.safetensors` was written (not when the weights are not finite).
    var wroteFinalWeights = false
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
        if launch.localSize == nil, let topology = comm.topology, comm.worldSize > 1 { launch.localSize = topology.ranksOnThisNode }
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

    func makeSchedules() {
        switch config.schedule {
        case "onecycle": stepSchedule = OneCycleLR(optimizer: optimizer, maxLR: config.lr, totalSteps: config.maxSteps ?? stepsPerEpoch * config.epochs)
        case "plateau": plateau = ReduceLROnPlateau(optimizer: optimizer, mode: monitorHigherIsBetter ? .max : .min, factor: 0.5, patience: 2)
        default: break
        }
    }

    func restore(_ c: LoadedCheckpoint) throws {
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

    /// The loop: epochs of steps until one ends the run early or the last is done, then the
    /// run's results. Each part is a method below: an epoch's batches, one step, its accounting,
    /// an epoch's end, the conclusion.
    func run() throws -> RunSummary {
        let start = Date()
        let loader = makeLoader()
        var progress = ProgressReporter(interactive: settings.interactive, logInterval: config.logInterval, totalEpochs: totalEpochs,
                                        maxSteps: config.maxSteps, unit: train.unit)
        if isCoordinator { announce() }
        if let dir = config.trace { try startTrace(dir) }
        if resumed || config.resume == "auto" {
            // Lines of epochs after the checkpoint (a run that died) would be written again.
            try Trainer.onRankZero(comm) { try writing("metrics.jsonl") { try rewriteMetrics() } }
        }
        var stop: StopReason?
        while stop == nil && epoch < totalEpochs {
            switch try trainEpoch(loader, progress: &progress) {
            case .stopped(let reason): stop = reason
            case .finished(let seconds): stop = try endEpoch(seconds: seconds)
            }
        }
        return try conclude(stop ?? .completed, wall: Date().timeIntervalSince(start))
    }

    /// Batches of this rank's shard: whole batches, or (deterministic) the indices of this rank's
    /// micro-batches, which the step gathers itself.
    func makeLoader() -> BatchLoader<Task.Batch?> {
        let sampler: Sampler = plan.map { MicroBatchSampler(datasetCount: train.count, plan: $0, seed: config.seed) }
            ?? DistributedSampler(count: train.count, rank: comm.rank, worldSize: comm.worldSize, shuffle: true, seed: config.seed)
        return BatchLoader(sampler: sampler, batchSize: plan.map { $0.perRank * $0.microBatch } ?? config.batchSize,
                           make: { [plan, train] indices in plan == nil ? train.batch(indices) : nil })
    }

    /// How an epoch's batches ended: all trained, or a stop that could not wait for the epoch's end.
    enum EpochOutcome {
        case finished(seconds: Double)
        case stopped(StopReason)
    }

    /// An epoch's end: validation and its record, the decision (plateau, early stopping), the
    /// checkpoint, and the stop every rank agrees on (a signal, early stopping, a request).
    func endEpoch(seconds: Double) throws -> StopReason? {
        let record = try finishEpoch(seconds: seconds)
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
        if flags[0] > 0 { return .interrupted }
        if decision.stop { return .earlyStopping(monitor: config.monitor, minDelta: config.minDelta, patience: config.patience ?? 0) }
        if flags[1] > 0 { return .requested(agreedRequest()) }
        return nil
    }

    /// The end: a stop checkpoint after a signal, the results, and divergence as an error.
    func conclude(_ stop: StopReason, wall: Double) throws -> RunSummary {
        if case .interrupted = stop {
            try saveCheckpoint(reason: "signal", record: nil)
            StopSignal.checkpointSaved()
            if isCoordinator {
                log.notice("stopping on a signal: checkpoint written to \(Checkpoints.directory(runDir: runDir)); continue with --resume latest --run-dir \(runDir)")
            }
        }
        let summary = try finish(stop: stop, wall: wall)
        if case .diverged = stop { throw TrainingFailure(description: "training stopped: \(stop)", summary: summary) }
        return summary
    }
}
