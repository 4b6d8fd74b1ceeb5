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

    enum CodingKeys: String, CodingKey {
        case epochs, steps, model, parameters, transport
        case trainLoss = "train_loss", valLoss = "val_loss", valAccuracy = "val_accuracy", testLoss = "test_loss"
        case testAccuracy = "test_accuracy", worldSize = "world_size", globalBatch = "global_batch"
        case samplesPerSecond = "samples_per_s", wallSeconds = "wall_s", stoppedReason = "stopped_reason", runDir = "run_dir"
        case shardedOptimizerStep = "sharded_optimizer_step", sharedMemoryTrials = "shared_memory_trials"
    }
}

/// Why a run ended early with a failure status.
public struct TrainingFailure: Error, CustomStringConvertible {
    public let description: String
    public let summary: RunSummary?
}

/// One rank's side of a training run. Every rank trains; rank 0 also decides when to stop, adjusts
/// the learning rate on plateaus, and writes checkpoints, metrics and reports.
final class RankTrainer {
    let config: TrainerConfig
    let comm: Communicator
    let data: PreparedData
    let runDir: String
    let log: Logger
    let resume: LoadedCheckpoint?
    var isCoordinator: Bool { comm.rank == 0 }

    let model: Module
    let ddp: DataParallel
    let optimizer: Optimizer
    let epochSchedule: EpochSchedule
    var stepSchedule: OneCycleLR?
    var plateau: ReduceLROnPlateau?
    let dropoutGenerator: Generator
    let settings: LaunchSettings

    // Loop state (all checkpointed).
    var epoch = 0, batchInEpoch = 0, globalStep = 0
    var bestValLoss: Double?
    var epochsWithoutImprovement = 0
    var epochSums = [0.0, 0.0, 0.0]
    var trainSamplesSeen = 0.0, trainSeconds = 0.0
    var history: [EpochRecord] = []

    init(config: TrainerConfig, comm: Communicator, data: PreparedData, runDir: String, resume: LoadedCheckpoint?, log: Logger,
         settings: LaunchSettings) throws {
        self.config = config
        self.settings = settings
        self.comm = comm
        self.data = data
        self.runDir = runDir
        self.resume = resume
        self.log = log
        dropoutGenerator = Generator(seed: config.seed &+ 1000 &+ UInt64(comm.rank))
        model = try ModelFactory.make(config, sampleShape: data.sampleShape, outputs: data.outputs,
                                      generator: Generator(seed: config.seed), dropoutGenerator: dropoutGenerator)
        if let resume { try model.loadStateDict(resume.model) }
        let overlap = config.overlap ?? settings.launch.overlapPaysOff(threadsPerRank: numThreads,
                                                                                   cores: ProcessInfo.processInfo.activeProcessorCount)
        ddp = try DataParallel(model, communicator: comm, bucketCapacityBytes: config.bucketKB * 1024, overlap: overlap,
                               shardOptimizerStep: config.shardOptimizer
                                   ?? DataParallel.shardingPaysOff(parameterCount: model.parameterCount, worldSize: comm.worldSize))
        optimizer = RankTrainer.makeOptimizer(config, model.parameters())
        epochSchedule = EpochSchedule(config: config)
        makeSchedules()
        if let resume { try restore(resume) }
    }

    static func makeOptimizer(_ c: TrainerConfig, _ params: [Tensor]) -> Optimizer {
        switch c.optimizer {
        case "adam": return Adam(parameters: params, learningRate: c.lr, betas: (c.beta1 ?? 0.9, c.beta2 ?? 0.999), weightDecay: c.weightDecay)
        case "adamw": return AdamW(parameters: params, learningRate: c.lr, betas: (c.beta1 ?? 0.9, c.beta2 ?? 0.999), weightDecay: c.weightDecay)
        case "rmsprop": return RMSprop(parameters: params, learningRate: c.lr, weightDecay: c.weightDecay, momentum: c.momentum ?? 0)
        case "adagrad": return Adagrad(parameters: params, learningRate: c.lr, weightDecay: c.weightDecay)
        default: return SGD(parameters: params, learningRate: c.lr, momentum: c.momentum ?? 0.9, weightDecay: c.weightDecay)
        }
    }

    var batchesPerEpoch: Int {
        let perRank = (data.train.count + comm.worldSize - 1) / comm.worldSize
        return (perRank + config.batchSize - 1) / config.batchSize
    }

    var stepsPerEpoch: Int { (batchesPerEpoch + config.gradAccumulation - 1) / config.gradAccumulation }

    private func makeSchedules() {
        switch config.schedule {
        case "onecycle": stepSchedule = OneCycleLR(optimizer: optimizer, maxLR: config.lr, totalSteps: stepsPerEpoch * config.epochs)
        case "plateau": plateau = ReduceLROnPlateau(optimizer: optimizer, factor: 0.5, patience: 2)
        default: break
        }
    }

    private func restore(_ c: LoadedCheckpoint) throws {
        let s = c.state
        try optimizer.loadStateDict(tensors: c.optimizer, groups: s.optimizerGroups)
        if let e = s.schedulerEpoch { stepSchedule?.restore(epoch: e) }
        for (g, values) in zip(optimizer.paramGroups, s.optimizerGroups) { g.learningRate = values["lr"] ?? g.learningRate }
        if let p = s.plateau { plateau?.restore(best: p.best, badEpochs: p.badEpochs, cooldown: p.cooldown) }
        bestValLoss = s.bestValLoss
        epochsWithoutImprovement = s.epochsWithoutImprovement
        history = s.history
        trainSamplesSeen = s.trainSamplesSeen
        trainSeconds = s.trainSeconds
        globalStep = s.globalStep
        epoch = s.epoch
        if s.worldSize == comm.worldSize {
            batchInEpoch = s.batchInEpoch
            epochSums = s.epochSums
            if comm.rank < s.generatorStates.count { dropoutGenerator.stateWords = s.generatorStates[comm.rank] }
        } else {
            // The data order depends on the world size: continue from the same point of the epoch.
            let seen = Double(s.batchInEpoch * s.config.batchSize * s.worldSize)
            batchInEpoch = min(batchesPerEpoch, Int((seen / Double(config.batchSize * comm.worldSize)).rounded(.up)))
            epochSums = s.epochSums
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
        let sampler = DistributedSampler(count: data.train.count, rank: comm.rank, worldSize: comm.worldSize,
                                         shuffle: true, seed: config.seed)
        let loader = DataLoader(data.train, batchSize: config.batchSize, sampler: sampler)
        var progress = ProgressReporter(interactive: settings.interactive, logInterval: config.logInterval, totalEpochs: config.epochs)
        var stopReason = "completed"
        let globalBatch = config.batchSize * comm.worldSize

        if isCoordinator {
            if let notice = data.notice { log.notice("\(notice)") }
            log.info("training \(config.model) (\(model.parameterCount) parameters) on \(data.source): \(data.train.count) train, \(data.val?.count ?? 0) validation, \(data.test?.count ?? 0) test samples")
            log.info("world \(comm.worldSize) (\(comm.backendName)), batch \(config.batchSize) per rank = \(globalBatch) global\(config.gradAccumulation > 1 ? " × \(config.gradAccumulation) accumulated" : ""), \(batchesPerEpoch) batches per epoch, optimizer \(config.optimizer) lr \(config.lr)")
            if comm.worldSize > 1 {
                let sharding = ddp.shardsOptimizerStep ? "; optimizer step sharded over the ranks (reduce-scatter, update a shard, allgather)" : ""
                let transport = switch (comm as? TransportSelecting)?.transportName {
                case "auto": " through shared memory or MPI's transport, whichever makes steps faster (tried again every 500 steps)"
                case "shm": " through shared memory (one node)"
                default: ""
                }
                log.info("gradients: \(ddp.bucketSizes.count) allreduce bucket(s) of up to \(config.bucketKB) KiB, \(ddp.overlap ? "overlapped with backward" : "after backward (ranks fill this node's cores)")\(transport)\(sharding)")
            }
        }

        training: while epoch < config.epochs {
            model.train()
            if let lr = epochSchedule.learningRate(epoch: epoch) { optimizer.learningRate = lr }
            loader.setEpoch(epoch)
            let epochStart = Date()
            var batch = 0
            var micro = 0
            for (x, y) in loader {
                batch += 1
                if batch <= batchInEpoch { continue }  // resuming inside this epoch
                let stepStart = Date()
                let last = batch == batchesPerEpoch
                micro += 1
                let boundary = micro == config.gradAccumulation || last
                try settings.injectedFailure?.check(rank: comm.rank, step: globalStep)
                let (lossSum, correct) = try trainBatch(x, y, synchronize: boundary)
                if boundary {
                    micro = 0
                    try ddp.step(optimizer, clipNorm: config.clipNorm, clipValue: config.clipValue)
                    optimizer.zeroGrad()
                    stepSchedule?.step()
                    globalStep += 1
                }
                // One small allreduce per batch: exact global loss, and agreement on a stop signal.
                let g = try comm.allreduceSum([lossSum, correct, Double(x.shape[0]), StopSignal.received != 0 ? 1 : 0])
                for i in 0..<3 { epochSums[i] += g[i] }
                trainSamplesSeen += g[2]
                trainSeconds += Date().timeIntervalSince(stepStart)
                batchInEpoch = batch
                let runningLoss = epochSums[0] / max(epochSums[2], 1)
                if !(g[0] / max(g[2], 1)).isFinite {
                    stopReason = "loss became \(g[0] / max(g[2], 1)) at step \(globalStep)"
                    break training
                }
                if isCoordinator {
                    progress.step(epoch: epoch, batch: batch, batches: batchesPerEpoch, loss: runningLoss,
                                  samplesPerSecond: trainSamplesSeen / max(trainSeconds, 1e-9), elapsed: Date().timeIntervalSince(epochStart))
                }
                if g[3] > 0 && boundary && !last {
                    stopReason = "interrupted by signal"
                    break training
                }
            }
            if isCoordinator { progress.endEpoch() }
            let record = try finishEpoch(seconds: Date().timeIntervalSince(epochStart))
            epoch += 1
            batchInEpoch = 0
            epochSums = [0, 0, 0]
            // Rank 0 decides whether to go on; everyone follows its decision and learning rate.
            var decision = [0.0, optimizer.learningRate]
            if isCoordinator {
                decision = [coordinatorWantsToStop(record) ? 1 : 0, optimizer.learningRate]
            }
            decision = try comm.broadcast(decision, root: 0)
            optimizer.learningRate = decision[1]
            let interval = config.checkpointInterval
            if interval > 0 && (epoch % interval == 0 || decision[0] != 0 || epoch == config.epochs) {
                try saveCheckpoint(reason: "epoch")
            }
            // Every rank takes part, whether or not it got the signal itself.
            if try comm.allreduceSum([StopSignal.received != 0 ? 1 : 0])[0] > 0 {
                stopReason = "interrupted by signal"
                break
            }
            if decision[0] != 0 {
                stopReason = "early stopping: no validation improvement of \(config.minDelta) for \(config.patience ?? 0) epochs"
                break
            }
        }

        let interrupted = stopReason == "interrupted by signal"
        let failed = stopReason.hasPrefix("loss became")
        if interrupted {
            try saveCheckpoint(reason: "signal")
            StopSignal.checkpointSaved()
            if isCoordinator {
                log.notice("stopping on a signal: checkpoint written to \(Checkpoints.directory(runDir: runDir)); continue with --resume latest --run-dir \(runDir)")
            }
        }
        let summary = try finish(stopReason: stopReason, wall: Date().timeIntervalSince(start))
        if failed { throw TrainingFailure(description: "training stopped: \(stopReason)", summary: summary) }
        return summary
    }

    /// Forward and backward of one batch; returns this rank's loss sum and correct count.
    private func trainBatch(_ x: Tensor, _ y: Tensor, synchronize: Bool) throws -> (Double, Double) {
        let forwardBackward = { () throws -> (Double, Double) in
            let out = try self.ddp(x)
            let loss = self.loss(out, y)
            (loss / Float(self.config.gradAccumulation)).backward()
            let n = Double(x.shape[0])
            return (loss.doubleItem() * n, self.correct(out, y))
        }
        return synchronize ? try forwardBackward() : try ddp.noSync(forwardBackward)
    }

    func loss(_ out: Tensor, _ y: Tensor) -> Tensor {
        data.task == .classification ? Losses.crossEntropy(out, y) : Losses.mse(out, y)
    }

    func correct(_ out: Tensor, _ y: Tensor) -> Double {
        guard data.task == .classification else { return 0 }
        return noGrad { out.argmax(dim: 1).eq(y).sum().doubleItem() }
    }

    /// Global loss and accuracy of a split; each rank evaluates its share, no sample twice.
    func evaluate(_ split: TensorDataset) throws -> (loss: Double, accuracy: Double?) {
        model.eval()
        defer { model.train() }
        let sampler = DistributedEvalSampler(count: split.count, rank: comm.rank, worldSize: comm.worldSize)
        var sums = [0.0, 0.0, 0.0]
        noGrad {
            for (x, y) in DataLoader(split, batchSize: max(config.batchSize, 256), sampler: sampler) {
                let out = model(x)
                sums[0] += loss(out, y).doubleItem() * Double(x.shape[0])
                sums[1] += correct(out, y)
                sums[2] += Double(x.shape[0])
            }
        }
        let m = try GlobalMetrics(communicator: comm).reduce(lossSum: sums[0], correct: sums[1], count: sums[2])
        return (m.loss, data.task == .classification ? m.accuracy : nil)
    }

    private func finishEpoch(seconds: Double) throws -> EpochRecord {
        let val = try data.val.map { try evaluate($0) }
        let trainLoss = epochSums[0] / max(epochSums[2], 1)
        let record = EpochRecord(epoch: epoch, step: globalStep, trainLoss: trainLoss,
                                 trainAccuracy: data.task == .classification ? epochSums[1] / max(epochSums[2], 1) : nil,
                                 valLoss: val?.loss, valAccuracy: val?.accuracy ?? nil, lr: optimizer.learningRate,
                                 epochSeconds: seconds, samplesPerSecond: epochSums[2] / max(seconds, 1e-9))
        history.append(record)
        if isCoordinator {
            var line = String(format: "epoch %d/%d  train loss %.4f", epoch + 1, config.epochs, trainLoss)
            if let a = record.trainAccuracy { line += String(format: " acc %.4f", a) }
            if let v = record.valLoss { line += String(format: "  val loss %.4f", v) }
            if let a = record.valAccuracy { line += String(format: " acc %.4f", a) }
            line += String(format: "  lr %.4g  %.1fs  %.0f samples/s", record.lr, seconds, record.samplesPerSecond)
            Console.writeLine(line)
        }
        try Trainer.onRankZero(comm) { try writing("metrics.jsonl") { try appendMetrics(record) } }
        return record
    }

    /// Early stopping and the plateau schedule, decided on rank 0 from exact global metrics.
    private func coordinatorWantsToStop(_ record: EpochRecord) -> Bool {
        guard let valLoss = record.valLoss else { return false }
        plateau?.step(valLoss)
        if bestValLoss.map({ valLoss < $0 - config.minDelta }) ?? true {
            bestValLoss = valLoss
            epochsWithoutImprovement = 0
        } else {
            epochsWithoutImprovement += 1
        }
        if let patience = config.patience, epochsWithoutImprovement > patience {
            log.notice("early stopping after epoch \(epoch + 1): validation loss has not improved for \(epochsWithoutImprovement) epochs")
            return true
        }
        return false
    }

    // MARK: Files (rank 0)

    private func appendMetrics(_ record: EpochRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var line = try encoder.encode(record)
        line.append(0x0a)
        try AtomicFile.append(line, to: (runDir as NSString).appendingPathComponent("metrics.jsonl"))
    }

    /// Runs rank 0's write of `what`, turning a failure into an `IOFailure` that names it.
    private func writing(_ what: String, _ body: () throws -> Void) throws {
        do { try body() } catch { throw IOFailure("could not write \(what) in \(runDir): \(error)") }
    }

    func saveCheckpoint(reason: String) throws {
        // Every rank's generator state travels to rank 0 as 32-bit halves (exact in a Double).
        let words = dropoutGenerator.stateWords.flatMap { [Double($0 >> 32), Double($0 & 0xffff_ffff)] }
        let gathered = try comm.allgather(words)
        let states = gathered.map { w in stride(from: 0, to: w.count, by: 2).map { UInt64(w[$0]) << 32 | UInt64(w[$0 + 1]) } }
        let opt = try ddp.optimizerStateDict(optimizer)  // collective when the step is sharded
        try Trainer.onRankZero(comm) { try writing("a checkpoint") { try writeCheckpoint(reason: reason, states: states, opt: opt) } }
    }

    private func writeCheckpoint(reason: String, states: [[UInt64]], opt: (tensors: [String: Tensor], groups: [[String: Double]])) throws {
        var optTensors: [String: Tensor] = [:]
        for (k, v) in opt.tensors { optTensors[k] = v }
        let state = CheckpointState(
            epoch: epoch, batchInEpoch: batchInEpoch, globalStep: globalStep, worldSize: comm.worldSize, config: config,
            optimizerGroups: opt.groups, schedulerEpoch: stepSchedule?.lastEpoch,
            plateau: plateau.map { PlateauState(best: $0.best, badEpochs: $0.badEpochs, cooldown: $0.cooldownCounter) },
            bestValLoss: bestValLoss, epochsWithoutImprovement: epochsWithoutImprovement, generatorStates: states,
            epochSums: epochSums, trainSamplesSeen: trainSamplesSeen, trainSeconds: trainSeconds, history: history,
            reason: reason, createdAt: ISO8601DateFormatter().string(from: Date()))
        let path = try Checkpoints.save(runDir: runDir, state: state, model: model.stateDict(), optimizer: optTensors,
                                        keepLast: config.keepLast)
        log.debug("checkpoint written: \(path)")
    }

    private func finish(stopReason: String, wall: Double) throws -> RunSummary {
        let test = try data.test.map { try evaluate($0) }
        let last = history.last
        let summary = RunSummary(
            epochs: history.count, steps: globalStep, trainLoss: last?.trainLoss ?? .nan, valLoss: last?.valLoss,
            valAccuracy: last?.valAccuracy, testLoss: test?.loss, testAccuracy: test?.accuracy ?? nil,
            worldSize: comm.worldSize, globalBatch: config.batchSize * comm.worldSize,
            samplesPerSecond: trainSamplesSeen / max(trainSeconds, 1e-9), wallSeconds: wall, stoppedReason: stopReason,
            model: config.model, parameters: model.parameterCount, runDir: runDir,
            transport: comm.transportDescription,
            sharedMemoryTrials: ddp.transportTrials.map { "\($0.sharedMemory) of \($0.trials)" },
            shardedOptimizerStep: ddp.shardsOptimizerStep)
        try Trainer.onRankZero(comm) { try writing("the run's results") { try writeResults(summary) } }
        guard isCoordinator else { return summary }
        var line = "done: \(history.count) epochs, \(globalStep) steps, train loss \(String(format: "%.4f", summary.trainLoss))"
        if let v = summary.valAccuracy { line += String(format: ", val accuracy %.4f", v) }
        if let t = summary.testAccuracy { line += String(format: ", test accuracy %.4f", t) }
        if let t = summary.testLoss, summary.testAccuracy == nil { line += String(format: ", test loss %.4f", t) }
        line += String(format: ", %.0f samples/s, %.1fs (%@)", summary.samplesPerSecond, wall, stopReason)
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
            try Safetensors.save(weights, metadata: ["format": "pt", "model": config.model],
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
        try AtomicFile.write(Data(Report.html(summary: object).utf8), to: (runDir as NSString).appendingPathComponent("report.html"))
    }
}

/// The per-epoch learning rate of `--schedule step|cosine|none` with an optional linear warm-up,
/// in closed form, so a resumed run needs only the epoch number.
struct EpochSchedule {
    let kind: String, base: Double, epochs: Int, warmup: Int

    init(config: TrainerConfig) {
        kind = config.schedule
        base = config.lr
        epochs = config.epochs
        warmup = config.warmupEpochs
    }

    /// nil when another schedule (one-cycle, plateau) owns the rate.
    func learningRate(epoch: Int) -> Double? {
        guard ["none", "step", "cosine"].contains(kind) else { return nil }
        if epoch < warmup { return base * (0.1 + 0.9 * Double(epoch) / Double(warmup)) }
        let e = Double(epoch - warmup), span = Double(max(1, epochs - warmup))
        switch kind {
        case "step": return base * pow(0.1, (e / max(1, (span / 3).rounded(.down))).rounded(.down))
        case "cosine": return base * (1 + cos(.pi * e / span)) / 2
        default: return base
        }
    }
}
