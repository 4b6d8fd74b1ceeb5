import Ember
import EmberDistributed
import Foundation
import Logging

/// A batch of training: the epoch's loop over batches, one step, its accounting over the ranks.
extension RankLoop {
    /// One epoch's batches (skipping those a resumed run already trained). Divergence, a signal
    /// or a callback's request at an optimizer step end it early.
    func trainEpoch(_ loader: BatchLoader<Task.Batch?>, progress: inout ProgressReporter) throws -> EpochOutcome {
        model.train()
        learningRate.epochBegins(epoch)
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
            if boundary { micro = 0 }
            let totals = try trainStep(indices: indices, samples: samples, boundary: boundary)
            trace?.span("batch \(batch)", "step", waitStart, args: ["step": Double(globalStep)])
            if let failure = trace?.stepEnded() { stopTrace(failure) }
            trainSeconds += Date().timeIntervalSince(stepStart)
            if let stop = account(totals, batch: batch, boundary: boundary, last: last, since: epochStart, progress: &progress) {
                return .stopped(stop)
            }
        }
        if isCoordinator { progress.endEpoch() }
        return .finished(seconds: Date().timeIntervalSince(epochStart))
    }

    /// One batch: forward and backward (data-parallel, or deterministic micro-batches), the
    /// optimizer step at an accumulation boundary, and the batch's loss and metrics over the ranks.
    func trainStep(indices: [Int], samples: Task.Batch?, boundary: Bool) throws -> BatchStatistics {
        try autocast(productPrecision) { try trainStepInPrecision(indices: indices, samples: samples, boundary: boundary) }
    }

    /// The precision of the run's matrix products (`--precision`).
    var productPrecision: Precision { Precision(rawValue: config.precision) ?? .float32 }

    func trainStepInPrecision(indices: [Int], samples: Task.Batch?, boundary: Bool) throws -> BatchStatistics {
        try settings.injectedFailure?.check(rank: comm.rank, step: globalStep)
        let local = try steps.forwardBackward(indices: indices, samples: samples, step: globalStep, synchronize: boundary)
        if boundary { try optimizerStep() }
        // One small allreduce per batch: exact global loss and metrics, and agreement on a stop.
        return try steps.totals(local)
    }

    /// The update at an accumulation boundary: the step's rate, clipping and the optimizer's step.
    func optimizerStep() throws {
        learningRate.stepBegins(globalStep)
        try measure("optimizer step", "optimizer") { try steps.update() }
        optimizer.zeroGrad()
        learningRate.stepEnded()
        globalStep += 1
    }

    /// Adds a batch's global totals to the epoch's, reports progress and tells the callbacks;
    /// returns the stop the batch calls for, if any (a non-finite loss; a signal or a request,
    /// honoured at an optimizer step before the epoch's last batch).
    func account(_ totals: BatchStatistics, batch: Int, boundary: Bool, last: Bool, since epochStart: Date,
                 progress: inout ProgressReporter) -> StopReason? {
        epochLoss.sum += totals.lossSum
        epochLoss.samples += totals.samples
        epochMetrics.add(totals.metrics.values, metrics)
        trainSamplesSeen += totals.samples
        batchInEpoch = batch
        let runningLoss = epochLoss.sum / max(epochLoss.samples, 1)
        if let diverged = stopPolicy.divergence(totals, step: globalStep) { return diverged }
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
        return stopPolicy.atBatchEnd(totals, boundary: boundary, last: last, request: agreedRequest)
    }

    /// The reason a callback gave for stopping: rank 0's, or a note that another rank asked.
    func agreedRequest() -> String {
        context.stopReason ?? "stop requested by a callback on another rank"
    }

    /// Global loss and metrics of a split; each rank evaluates its share, no sample twice.
    func evaluate(_ split: TaskData<Task.Batch>) throws -> (loss: Double, metrics: MetricTotals) {
        try autocast(productPrecision) {
            model.eval()
            defer { model.train() }
            return try steps.evaluate(split)
        }
    }
}
