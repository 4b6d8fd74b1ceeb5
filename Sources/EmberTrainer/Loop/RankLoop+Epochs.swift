import Ember
import EmberDistributed
import Foundation
import Logging

extension RankLoop {
    /// Validation, the epoch's record, its line and `metrics.jsonl`.
    func finishEpoch(seconds: Double) throws -> EpochRecord {
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
    func decide(_ record: EpochRecord) throws -> (stop: Bool, lr: Double) {
        var decision = [0.0, optimizer.learningRate]
        if isCoordinator { decision = [coordinatorWantsToStop(record) ? 1 : 0, optimizer.learningRate] }
        decision = try comm.broadcast(decision, root: 0)
        optimizer.learningRate = decision[1]
        return (decision[0] != 0, decision[1])
    }

    func coordinatorWantsToStop(_ record: EpochRecord) -> Bool {
        guard let value = record.values[config.monitor] else { return false }
        learningRate.epochEnded(monitored: value)
        guard stopPolicy.observe(value) else { return false }
        log.notice("early stopping after epoch \(epoch + 1): \(config.monitor == "val_loss" ? "validation loss" : config.monitor) has not improved for \(stopPolicy.epochsWithoutImprovement) epochs")
        return true
    }

    // MARK: Files (rank 0)
}
