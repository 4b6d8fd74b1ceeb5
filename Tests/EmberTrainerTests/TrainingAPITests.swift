import XCTest
import Foundation
import Ember
@testable import EmberTrainer

/// `Trainer.fit` with tasks of one's own: batches that are not pairs, metrics reduced exactly
/// over ranks, callbacks that stop the run and keep state across a resume, the best checkpoints,
/// and models registered under a name.
final class TrainingAPITests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "ember-api-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func options(_ name: String, epochs: Int = 3, ranks: Int = 1) -> TrainerConfig {
        var c = TrainerConfig()
        c.epochs = epochs
        c.batchSize = 8
        c.lr = 0.05
        c.schedule = "none"
        c.localRanks = ranks
        c.logLevel = "error"
        c.logInterval = 1000
        c.runDir = root + "/" + name
        return c
    }

    static let noLaunch = LaunchSettings()

    /// Batches of three tensors (features, a mask, targets) and a step of its own; metrics of
    /// every reduction.
    struct MaskedRegression: TrainingTask {
        typealias Batch = (x: Tensor, mask: Tensor, y: Tensor)
        static let x = Tensor.randn([40, 3], generator: Generator(seed: 7))
        static let y = (x.sum(dim: 1, keepDim: true) * 0.5)
        static let mask = Tensor((0..<40).map { $0 % 4 == 0 ? 0 : 1 }, shape: [40, 1])

        var metrics: [Metric] {
            [Metric("kept", .sum), Metric("largest_error", .max), Metric("smallest_target", .min), Metric("masked_mse", .mean)]
        }

        func makeModel(generators g: ModelGenerators) -> Linear { Linear(inFeatures: 3, outFeatures: 1, generator: g.weights) }

        func trainingData() -> TaskData<Batch> { data(0..<32) }
        func validationData() -> TaskData<Batch>? { data(32..<40) }

        func data(_ range: Range<Int>) -> TaskData<Batch> {
            TaskData(count: range.count) { indices in
                let index = Tensor(indices: indices.map { $0 + range.lowerBound })
                return (Self.x.indexSelect(dim: 0, index: index), Self.mask.indexSelect(dim: 0, index: index), Self.y.indexSelect(dim: 0, index: index))
            }
        }

        func trainingStep(model: Linear, batch: Batch, log: inout MetricLog) -> Tensor {
            let err = (model(batch.x) - batch.y) * batch.mask
            let kept = batch.mask.sum().doubleItem()
            log.record("kept", kept)
            log.record("largest_error", noGrad { err.abs().max().doubleItem() })
            log.record("smallest_target", batch.y.min().doubleItem())
            let sse = (err * err).sum()
            log.record("masked_mse", sse.doubleItem(), count: kept)
            return sse / Float(max(kept, 1))
        }
    }

    func testBatchesOfAnyShapeAndMetricsReducedExactlyOverRanks() throws {
        for ranks in [1, 2] {
            let summary = try Trainer.fit(MaskedRegression(), options: options("masked\(ranks)", ranks: ranks), settings: Self.noLaunch)
            XCTAssertEqual(summary.epochs, 3)
            XCTAssertEqual(summary.extra["train_kept"], 24, "every training sample once per epoch, over all ranks")
            XCTAssertEqual(summary.extra["val_kept"], 6)
            XCTAssertEqual(summary.extra["val_smallest_target"], Double(MaskedRegression.y.narrow(dim: 0, start: 32, length: 8).min().item()))
            XCTAssertNotNil(summary.extra["val_largest_error"])
            let lines = try String(contentsOfFile: root + "/masked\(ranks)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(lines.count, 3)
            XCTAssertTrue(lines[0].contains("\"train_masked_mse\""), String(lines[0]))
        }
    }

    /// Stops after a given epoch and counts the epochs it saw; its count is saved in checkpoints.
    final class Stopper: TrainingCallback {
        let after: Int
        var epochsSeen = 0
        var restored: Int?
        init(after: Int) { self.after = after }
        var ranks: CallbackRanks { .everyRank }
        func epochEnded(_ context: TrainingContext) {
            epochsSeen += 1
            if context.epoch + 1 == after { context.requestStop("stopped by the test after epoch \(after)") }
        }
        func checkpointState() throws -> Data? { try JSONEncoder().encode(epochsSeen) }
        func restore(checkpointState: Data) throws {
            epochsSeen = try JSONDecoder().decode(Int.self, from: checkpointState)
            restored = epochsSeen
        }
    }

    func testCallbacksStopTheRunAndKeepTheirStateAcrossAResume() throws {
        let first = Stopper(after: 2)
        let summary = try Trainer.fit(MaskedRegression(), options: options("stop", epochs: 10), settings: Self.noLaunch, callbacks: { [first] })
        XCTAssertEqual(summary.stoppedReason, "stopped by the test after epoch 2")
        XCTAssertEqual(summary.epochs, 2)
        var resumed = options("stop", epochs: 4)
        resumed.resume = "latest"
        let second = Stopper(after: 100)
        let done = try Trainer.fit(MaskedRegression(), options: resumed, settings: Self.noLaunch, callbacks: { [second] })
        XCTAssertEqual(second.restored, 2, "the callback's checkpointed state came back")
        XCTAssertEqual(second.epochsSeen, 4)
        XCTAssertEqual(done.epochs, 4)
        XCTAssertEqual(done.stoppedReason, "completed")
    }

    func testTheBestCheckpointsByAMetricAreKept() throws {
        var c = options("best", epochs: 6)
        c.keepLast = 1
        c.keepBest = 2
        c.monitor = "val_masked_mse"
        _ = try Trainer.fit(MaskedRegression(), options: c, settings: Self.noLaunch)
        let kept = Checkpoints.list(runDir: c.runDir!)
        let state = try Checkpoints.load(kept.last!).state
        let best = state.best!.map(\.name)
        XCTAssertEqual(best.count, 2)
        let values = state.history.map { $0.values["val_masked_mse"]! }
        let bestTwo = Set(state.history.indices.sorted { values[$0] < values[$1] }.prefix(2).map { state.history[$0].step })
        XCTAssertEqual(Set(best.map { Int($0.dropFirst(5))! }), bestTwo, "the two epochs with the lowest validation error")
        XCTAssertEqual(Set(kept.map { ($0 as NSString).lastPathComponent }), Set(best).union([(kept.last! as NSString).lastPathComponent]))
    }

    /// With `--schedule none` a callback owns the learning rate.
    final class OwnSchedule: TrainingCallback {
        var ranks: CallbackRanks { .everyRank }
        func epochEnded(_ context: TrainingContext) { context.optimizer.learningRate = 0.01 * Double(context.epoch + 1) }
    }

    func testACallbackCanOwnTheLearningRate() throws {
        _ = try Trainer.fit(MaskedRegression(), options: options("own-lr", ranks: 2), settings: Self.noLaunch, callbacks: { [OwnSchedule()] })
        let rates = try String(contentsOfFile: root + "/own-lr/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }.map { $0["lr"] as! Double }
        XCTAssertEqual(rates, [0.05, 0.01, 0.02])
    }

    /// `--checkpoint-interval 0`: no periodic checkpoints, but one at the end, so resuming a
    /// finished run trains nothing again.
    func testIntervalZeroStillCheckpointsTheEnd() throws {
        var c = options("interval0", epochs: 3)
        c.checkpointInterval = 0
        _ = try Trainer.fit(MaskedRegression(), options: c, settings: Self.noLaunch)
        let kept = Checkpoints.list(runDir: c.runDir!)
        XCTAssertEqual(kept.count, 1)
        XCTAssertEqual(try Checkpoints.load(kept[0]).state.epoch, 3)
        c.resume = "latest"
        let again = try Trainer.fit(MaskedRegression(), options: c, settings: Self.noLaunch)
        XCTAssertEqual(again.epochs, 3)
        let lines = try String(contentsOfFile: c.runDir! + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3, "no epoch twice")
    }

    func testARegisteredModelTrainsAsAPreset() throws {
        ModelRegistry.register("test-tiny") { input in
            Sequential(Flatten(), Linear(inFeatures: input.features, outFeatures: input.outputs, generator: input.generators.weights))
        }
        var c = options("registered", epochs: 1)
        c.model = "test-tiny"
        c.data = "synthetic"
        c.syntheticSamples = 64
        let summary = try Trainer.train(c, settings: Self.noLaunch)
        XCTAssertEqual(summary.model, "test-tiny")
        XCTAssertEqual(summary.parameters, 784 * 10 + 10)
        XCTAssertNotNil(summary.testAccuracy)
    }
}
