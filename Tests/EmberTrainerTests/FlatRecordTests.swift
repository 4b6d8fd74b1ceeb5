import Foundation
import XCTest
@testable import EmberTrainer

/// metrics.jsonl and summary.json keep a task's metrics flat beside the fixed fields, while the
/// compiler codes the records with them nested; checkpoints written before read back whole.
final class FlatRecordTests: XCTestCase {
    let record = EpochRecord(epoch: 2, step: 30, trainLoss: 1.25, trainAccuracy: nil, valLoss: .nan, valAccuracy: nil,
                             lr: 0.1, epochSeconds: 3, samplesPerSecond: 100, extra: ["val_perplexity": 3.5, "tokens_per_s": 0.1])

    func object(_ data: Data) throws -> [String: Any] { try JSONSerialization.jsonObject(with: data) as! [String: Any] }

    func testAMetricsLineHasTheTaskMetricsAtTheTopLevel() throws {
        let line = try object(EpochRecord.flatJSON(record, encoder: metricsEncoder))
        XCTAssertNil(line["extra"])
        XCTAssertEqual(line["val_perplexity"] as? Double, 3.5)
        XCTAssertEqual(line["tokens_per_s"] as? Double, 0.1)
        XCTAssertEqual(line["val_loss"] as? String, "nan", "non-finite numbers stay strings")
        XCTAssertEqual(line["train_loss"] as? Double, 1.25)
    }

    func testAFlatLineReadsBackAsTheSameRecord() throws {
        let flat = try object(EpochRecord.flatJSON(record, encoder: metricsEncoder))
        let data = try JSONSerialization.data(withJSONObject: EpochRecord.nested(flat))
        let back = try Checkpoints.decoder.decode(EpochRecord.self, from: data)
        XCTAssertEqual(back.extra, record.extra)
        XCTAssertEqual(back.trainLoss, record.trainLoss)
        XCTAssertTrue(back.valLoss!.isNaN)
    }

    func testACheckpointWrittenWithFlatHistoryKeepsItsMetrics() throws {
        var state = CheckpointState(epoch: 1, batchInEpoch: 0, globalStep: 30, worldSize: 1, config: TrainerConfig(), optimizerGroups: [],
                                    schedulerEpoch: nil, plateau: nil, bestValLoss: 0.1 + 0.2, epochsWithoutImprovement: 0,
                                    generatorStates: [], epochSums: [0, 0, 0], trainSamplesSeen: 0, trainSeconds: 0,
                                    history: [record], reason: "epoch", createdAt: "")
        state.trainSeconds = 1.0 / 3
        // The layout of state.json before the records were coded by the compiler: metrics flat.
        var old = try object(Checkpoints.encoder.encode(state))
        old["history"] = try [object(EpochRecord.flatJSON(record, encoder: metricsEncoder))]
        let loaded = try Checkpoints.decodeState(JSONSerialization.data(withJSONObject: old))
        XCTAssertEqual(loaded.history.first?.extra, record.extra)
        XCTAssertEqual(loaded.bestValLoss, 0.1 + 0.2, "every other number keeps its bits")
        XCTAssertEqual(loaded.trainSeconds, 1.0 / 3)
    }

    func testACheckpointWrittenBeforeAnOptionExistedTakesItsDefault() throws {
        var config = TrainerConfig()
        config.lr = 0.125
        let state = CheckpointState(epoch: 1, batchInEpoch: 0, globalStep: 3, worldSize: 1, config: config, optimizerGroups: [],
                                    schedulerEpoch: nil, plateau: nil, bestValLoss: nil, epochsWithoutImprovement: 0,
                                    generatorStates: [], epochSums: [0, 0, 0], trainSamplesSeen: 0, trainSeconds: 0,
                                    history: [record], reason: "epoch", createdAt: "")
        var old = try object(Checkpoints.encoder.encode(state))
        var oldConfig = old["config"] as! [String: Any]
        for key in ["precision", "reduceDtype"] { oldConfig[key] = nil }
        old["config"] = oldConfig
        let loaded = try Checkpoints.decodeState(JSONSerialization.data(withJSONObject: old))
        XCTAssertEqual(loaded.config.precision, "fp32")
        XCTAssertEqual(loaded.config.reduceDtype, "fp32")
        XCTAssertEqual(loaded.config.lr, 0.125)
        XCTAssertEqual(loaded.history.first?.extra, record.extra)
    }

    func testASummaryHasTheTaskMetricsAtTheTopLevel() throws {
        let summary = RunSummary(epochs: 1, steps: 2, trainLoss: 1, worldSize: 1, globalBatch: 8, samplesPerSecond: 1, wallSeconds: 1,
                                 stoppedReason: "completed", model: "m", parameters: 3, runDir: "r", transport: "single",
                                 shardedOptimizerStep: false, extra: ["test_perplexity": 2.5])
        let json = try object(RunSummary.flatJSON(summary, encoder: Checkpoints.encoder))
        XCTAssertEqual(json["test_perplexity"] as? Double, 2.5)
        XCTAssertNil(json["extra"])
        XCTAssertEqual(json["stopped_reason"] as? String, "completed")
    }
}
