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
    /// Data-parallel or deterministic: how batches become gradients, updates and statistics.
    let steps: any TrainingSteps<Task>
    /// The one owner of the learning rate (schedules, warm-up, plateau).
    let learningRate: LearningRatePolicy
    let dropoutGenerator: Generator
    /// The callbacks that run on this rank.
    let callbacks: [TrainingCallback]
    /// Every callback (the checkpointed states are indexed by position among these).
    let allCallbacks: [TrainingCallback]
    let context: TrainingContext

    // Loop state (all checkpointed).
    var epoch = 0, batchInEpoch = 0, globalStep = 0
    /// Whether and why the run stops early (with early stopping's best value so far).
    var stopPolicy: StopPolicy
    var epochLoss = (sum: 0.0, samples: 0.0)
    var epochMetrics = MetricTotals()
    var trainSamplesSeen = 0.0, trainSeconds = 0.0
    var history: [EpochRecord] = []
    var best: [BestCheckpoint] = []
    /// Whether this run continues from a checkpoint.
    private(set) var resumed = false
    /// The timeline (`--trace`), nil when not tracing.
    var trace: TraceRecorder? {
        get { timeline.recorder }
        set { timeline.recorder = newValue }
    }
    let timeline = Timeline()
    /// Whether `final.safetensors` was written (not when the weights are not finite).
    var wroteFinalWeights = false

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
        let bfloat16Gradients = config.reduceDtype == "bf16"
        ddp = try DataParallel(model, communicator: comm, bucketCapacityBytes: config.bucketKB * 1024, overlap: overlap,
                               shardOptimizerStep: config.deterministic ? false : config.shardOptimizer
                                   ?? (!bfloat16Gradients && DataParallel.shardingPaysOff(parameterCount: model.parameterCount, worldSize: comm.worldSize)),
                               reduceDtype: bfloat16Gradients ? .bfloat16 : .float32)
        let optimizer = try task.makeOptimizer(model: model, options: config)
        self.optimizer = optimizer
        allCallbacks = callbacks
        self.callbacks = callbacks.filter { $0.ranks == .everyRank || comm.rank == 0 }
        context = TrainingContext(rank: comm.rank, worldSize: comm.worldSize, model: model, optimizer: optimizer)
        let parts = StepParts(task: task, model: model, ddp: ddp, train: train, metrics: metrics, comm: comm, optimizer: optimizer,
                              config: config, dropoutGenerator: dropoutGenerator, context: context, timeline: timeline)
        steps = config.deterministic
            ? try DeterministicSteps(parts, plan: DeterministicPlan(config, rank: comm.rank, worldSize: comm.worldSize))
            : DataParallelSteps(parts)
        stopPolicy = StopPolicy(config: config, higherIsBetter: Self.higherIsBetter(config.monitor, metrics))
        let epochSteps = Self.stepsPerEpoch(batchesPerPass: steps.batchesPerPass, config: config)
        learningRate = LearningRatePolicy(config: config, optimizer: optimizer, totalSteps: config.maxSteps ?? epochSteps * config.epochs,
                                          higherIsBetter: Self.higherIsBetter(config.monitor, metrics))
        if let resume { try restore(resume) }
    }

    /// Batches in one pass over the training data (per rank).
    var dataBatchesPerEpoch: Int { steps.batchesPerPass }

    /// Optimizer steps of an epoch. Training by steps (`maxSteps`), an epoch is the period
    /// between validations: `evalInterval` steps, or one pass over the data if that is shorter.
    var stepsPerEpoch: Int { Self.stepsPerEpoch(batchesPerPass: dataBatchesPerEpoch, config: config) }

    static func stepsPerEpoch(batchesPerPass: Int, config: TrainerConfig) -> Int {
        let data = (batchesPerPass + config.gradAccumulation - 1) / config.gradAccumulation
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
    var monitorHigherIsBetter: Bool { Self.higherIsBetter(config.monitor, metrics) }

    static func higherIsBetter(_ monitor: String, _ metrics: [Metric]) -> Bool {
        let name = monitor.drop { $0 != "_" }.dropFirst()
        return metrics.first { $0.name == name }?.higherIsBetter ?? false
    }

    func restore(_ c: LoadedCheckpoint) throws {
        let s = c.state
        resumed = true
        try optimizer.loadStateDict(tensors: c.optimizer, groups: s.optimizerGroups)
        learningRate.restore(schedulerEpoch: s.schedulerEpoch, plateau: s.plateau, groups: s.optimizerGroups)
        stopPolicy.best = s.bestValLoss
        stopPolicy.epochsWithoutImprovement = s.epochsWithoutImprovement
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
        if s.worldSize == comm.worldSize || steps.positionHoldsOnAnyWorldSize {
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
        // A run by steps that stopped inside a period (--max-steps below --eval-interval), given
        // more steps now, goes on with that period where it stopped, not after it.
        if let maxSteps = config.maxSteps, globalStep < maxSteps, batchInEpoch == 0, epoch > 0, globalStep < epoch * stepsPerEpoch {
            epoch = globalStep / stepsPerEpoch
            batchInEpoch = (globalStep - epoch * stepsPerEpoch) * config.gradAccumulation
        }
        guard isCoordinator else { return }
        if let maxSteps = config.maxSteps, s.globalStep >= maxSteps {
            log.notice("resumed from \(c.path) at step \(s.globalStep): the run had already taken its \(maxSteps) steps, so there is nothing to train (give a larger --max-steps to go on)")
        } else if config.maxSteps == nil, s.epoch >= config.epochs {
            log.notice("resumed from \(c.path) after epoch \(s.epoch): the run had already finished its \(config.epochs) epochs, so there is nothing to train (give a larger --epochs to go on)")
        } else {
            log.info("resumed from \(c.path) (epoch \(epoch + 1), step \(globalStep)\(batchInEpoch > 0 ? ", batch \(batchInEpoch) of the epoch" : ""))")
        }
    }

    // MARK: The loop

    /// The loop: epochs of steps until one ends the run early or the last is done, then the
    /// run's results. Each part is a method below: an epoch's batches, one step, its accounting,
    /// an epoch's end, the conclusion.
    func run() throws -> RunSummary {
        let start = Date()
        let loader = steps.makeLoader()
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
        return stopPolicy.afterEpoch(signal: flags[0] > 0, earlyStopping: decision.stop, requested: flags[1] > 0, request: agreedRequest)
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
