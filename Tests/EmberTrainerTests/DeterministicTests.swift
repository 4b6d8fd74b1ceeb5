import XCTest
import Foundation
import Ember
@testable import EmberTrainer

/// `--deterministic`: bitwise the same weights, optimizer state and metrics on any world size
/// that divides the micro-batches (ranks as threads here; launch/test runs mpirun too).
final class DeterministicTests: RunDirectoryTestCase {

    func config(_ name: String, ranks: Int, model: ModelName = .mlp, epochs: Int = 2) -> TrainerConfig {
        var c = TrainerConfig()
        (c.model, c.data, c.syntheticSamples, c.epochs) = (model, "synthetic", model == .mlp ? 150 : 40, epochs)
        (c.deterministic, c.globalBatchSize, c.dropout, c.optimizer, c.lr) = (true, 24, model == .mlp ? 0.3 : 0, .adam, 0.002)
        c.localRanks = ranks
        c.runDir = root + "/" + name
        c.logLevel = "warning"
        return c
    }

    /// metrics.jsonl without the timings.
    func metrics(_ run: String) throws -> [[String: Double]] {
        try String(decoding: file(run, "metrics.jsonl")!, as: UTF8.self).split(separator: "\n").map { line in
            let d = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return d.filter { $0.key != "epoch_s" && !$0.key.hasSuffix("_per_s") }.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
    }

    func testMLPWithDropoutIsBitwiseTheSameOnOneTwoAndThreeRanks() throws {
        for n in [1, 2, 3] { _ = try Trainer.train(config("mlp\(n)", ranks: n)) }
        XCTAssertNotNil(file("mlp1", "final.safetensors"))
        for n in [2, 3] {
            XCTAssertEqual(file("mlp1", "final.safetensors"), file("mlp\(n)", "final.safetensors"), "\(n) ranks")
            XCTAssertEqual(try metrics("mlp1"), try metrics("mlp\(n)"), "\(n) ranks")
        }
        // The optimizer state too: the latest checkpoints' optimizer tensors agree.
        let a = try Checkpoints.latestValid(runDir: root + "/mlp1") { _ in }, b = try Checkpoints.latestValid(runDir: root + "/mlp3") { _ in }
        for (k, t) in a.optimizer { XCTAssertEqual(t.scalars, b.optimizer[k]?.scalars, k) }
    }

    func testBatchNormRunningStatisticsAgreeAcrossWorldSizes() throws {
        for n in [1, 2] { _ = try Trainer.train(config("bn\(n)", ranks: n, model: .resnetSmall, epochs: 1)) }
        XCTAssertEqual(file("bn1", "final.safetensors"), file("bn2", "final.safetensors"))
    }

    /// The language models too: gpt (attention and residual dropout) and a two-layer lstm
    /// (dropout between the layers), on 1 and 3 ranks.
    func testLanguageModelsWithDropoutAgreeAcrossWorldSizes() throws {
        let text = String(repeating: "ROMEO: to be or not to be.\nJULIET: that is the question.\n", count: 30)
        try text.write(toFile: root + "/corpus.txt", atomically: true, encoding: .utf8)
        for model in [ModelName.gpt, .lstm] {
            for n in [1, 3] {
                var c = TrainerConfig(model: model)
                c.data = "text:" + root + "/corpus.txt"
                (c.nLayer, c.nHead, c.nEmbd, c.hiddenSize, c.blockSize, c.dropout) = (2, 2, 16, 16, 16, 0.2)
                (c.maxSteps, c.evalInterval, c.warmupSteps) = (6, 3, 1)
                (c.deterministic, c.globalBatchSize, c.localRanks) = (true, 12, n)
                c.runDir = root + "/\(model)\(n)"
                c.logLevel = "warning"
                _ = try Trainer.train(c)
            }
            XCTAssertEqual(file("\(model)1", "final.safetensors"), file("\(model)3", "final.safetensors"), "\(model)")
            XCTAssertEqual(try metrics("\(model)1"), try metrics("\(model)3"), "\(model)")
        }
    }

    /// Stopped after one epoch on two ranks, resumed on three: the uninterrupted run's bits.
    func testResumingOnAnotherWorldSizeContinuesBitwise() throws {
        _ = try Trainer.train(config("whole", ranks: 1, epochs: 3))
        var part = config("part", ranks: 2, epochs: 3)
        _ = try Trainer.fit(PresetTask(config: part, data: try DataPreparation.prepare(part)), options: part,
                            callbacks: { [StopAtEpoch(1)] })
        part.resume = "latest"
        part.localRanks = 3
        let summary = try Trainer.train(part) { $0.localRanks = 3 }
        XCTAssertEqual(summary.epochs, 3)
        XCTAssertEqual(file("whole", "final.safetensors"), file("part", "final.safetensors"))
    }

    func testAWorldSizeThatDoesNotShareTheMicroBatchesIsNamed() throws {
        var c = config("odd", ranks: 3)
        c.globalBatchSize = 10  // 2 micro-batches of 5
        XCTAssertThrowsError(try Trainer.train(c)) { XCTAssertTrue("\($0)".contains("2 micro-batches of 5 (global batch 10) cannot be shared by 3 ranks; use 1, 2 ranks"), "\($0)") }
        var d = TrainerConfig()
        d.deterministic = true
        XCTAssertThrowsError(try d.validate()) { XCTAssertTrue("\($0)".contains("--deterministic needs --global-batch-size"), "\($0)") }
    }
}

/// Asks training to stop at the end of epoch `epoch` (1-based count of finished epochs).
final class StopAtEpoch: TrainingCallback {
    let epoch: Int
    init(_ epoch: Int) { self.epoch = epoch }
    var ranks: CallbackRanks { .everyRank }
    func epochEnded(_ context: TrainingContext) { if context.epoch + 1 == epoch { context.requestStop("test stop") } }
}

final class MicroBatchRowsTests: XCTestCase {
    /// Losses and `.mean` metrics add in row order; `.max`/`.min` metrics keep their extremes.
    func testRowsCombineByEachMetricsReduction() {
        let metrics = [Metric("accuracy"), Metric("worst", .max), Metric("best", .min)]
        let rows: [[Double]] = [[2.0, 4, 3, 4, 0.5, 4, 0.25, 4], [1.0, 4, 1, 4, 0.75, 4, 0.5, 4]]
        let c = MicroBatchRows.combine(rows, metrics: metrics)
        XCTAssertEqual(c.lossSum, 3)
        XCTAssertEqual(c.weight, 8)
        XCTAssertEqual(c.metrics.value(metrics[0]), 0.5)
        XCTAssertEqual(c.metrics.value(metrics[1]), 0.75)
        XCTAssertEqual(c.metrics.value(metrics[2]), 0.25)
    }
}
