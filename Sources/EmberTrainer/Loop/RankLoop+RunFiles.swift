import Ember
import EmberDistributed
import Foundation
import Logging

/// One line of `metrics.jsonl`: keys sorted, non-finite numbers as strings.
let metricsEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return encoder
}()

extension RankLoop {
    func metricsLine(_ record: EpochRecord) throws -> Data {
        var line = try EpochRecord.flatJSON(record, encoder: metricsEncoder)
        line.append(0x0a)
        return line
    }

    func appendMetrics(_ record: EpochRecord) throws {
        try AtomicFile.append(metricsLine(record), to: (runDir as NSString).appendingPathComponent("metrics.jsonl"))
    }

    /// `metrics.jsonl` as the checkpoint's history says (atomically): the epochs up to it, once.
    func rewriteMetrics() throws {
        var all = Data()
        for record in history { all.append(try metricsLine(record)) }
        try AtomicFile.write(all, to: (runDir as NSString).appendingPathComponent("metrics.jsonl"))
    }

    /// Runs rank 0's write of `what`, turning a failure into an `IOFailure` that names it.
    func writing(_ what: String, _ body: () throws -> Void) throws {
        do { try body() } catch { throw IOFailure("could not write \(what) in \(runDir): \(error)") }
    }

    /// A checkpoint (collective: every rank's generator state, and the optimizer state when the
    /// step is sharded, are gathered); `record` is the epoch that just ended, for `keepBest`.
    func saveCheckpoint(reason: String, record: EpochRecord?) throws {
        try measure("checkpoint", "checkpoint") { try writeCheckpointCollectively(reason: reason, record: record) }
    }

    func writeCheckpointCollectively(reason: String, record: EpochRecord?) throws {
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

    func writeCheckpoint(reason: String, states: [[UInt64]], opt: (tensors: [String: Tensor], groups: [[String: Double]]),
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
            optimizerGroups: opt.groups, schedulerEpoch: learningRate.checkpointed.schedulerEpoch, plateau: learningRate.checkpointed.plateau,
            bestValLoss: stopPolicy.best, epochsWithoutImprovement: stopPolicy.epochsWithoutImprovement, generatorStates: states,
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

    func finish(stop: StopReason, wall: Double) throws -> RunSummary {
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
            shardedOptimizerStep: ddp.shardsOptimizerStep, precision: config.precision, reduceDtype: config.reduceDtype, extra: extra)
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

    /// `final.safetensors` (only of finite weights: a diverged run never replaces good ones),
    /// `summary.json` and the report.
    func writeResults(_ summary: RunSummary) throws {
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
        let json = try RunSummary.flatJSON(summary, encoder: Checkpoints.encoder)
        try AtomicFile.write(json, to: (runDir as NSString).appendingPathComponent("summary.json"))
        try AtomicFile.write(Data(Report.svg(history: history, testAccuracy: summary.testAccuracy).utf8),
                             to: (runDir as NSString).appendingPathComponent("report.svg"))
        let object = (try JSONSerialization.jsonObject(with: json) as? [String: Any]) ?? [:]
        try AtomicFile.write(Data(Report.html(summary: object, timeline: config.trace != nil).utf8),
                             to: (runDir as NSString).appendingPathComponent("report.html"))
    }
}
