import XCTest
import Foundation
import Ember
@testable import EmberTrainer

/// A task's model rebuilt and loaded outside the trainer (`ModelGenerators(seed:)`,
/// `Trainer.loadModel`, `Trainer.evaluate`), as Lightning's `load_from_checkpoint` and
/// `trainer.validate` do.
final class LoadModelTests: RunDirectoryTestCase {
    typealias Task = TrainingAPITests.MaskedRegression

    func options(_ run: String, epochs: Int) -> TrainerConfig {
        var c = TrainerConfig()
        (c.epochs, c.batchSize, c.schedule, c.logLevel, c.runDir) = (epochs, 8, "none", "error", root + "/" + run)
        return c
    }

    func testTheGeneratorsOfASeedBuildTheRunsInitialWeights() throws {
        let a = Task().makeModel(generators: ModelGenerators(seed: 5)), b = Task().makeModel(generators: ModelGenerators(seed: 5))
        XCTAssertEqual(a.weight.scalars, b.weight.scalars)
        XCTAssertNotEqual(a.weight.scalars, Task().makeModel(generators: ModelGenerators(seed: 6)).weight.scalars)
        var c = options("initial", epochs: 1)
        c.seed = 5
        c.lr = 1e-30  // the weights stay (to float32's precision) where they started
        _ = try Trainer.fit(Task(), options: c, settings: TrainingAPITests.noLaunch)
        let final = try Safetensors.load(c.runDir! + "/final.safetensors").tensors
        XCTAssertEqual(final["weight"]?.scalars, a.weight.scalars)
    }

    func testARunsFinalWeightsLoadIntoTheTasksModelInEvalMode() throws {
        let c = options("load", epochs: 2)
        _ = try Trainer.fit(Task(), options: c, settings: TrainingAPITests.noLaunch)
        let model = try Trainer.loadModel(Task(), from: c.runDir!)
        let final = try Safetensors.load(c.runDir! + "/final.safetensors").tensors
        XCTAssertEqual(model.weight.scalars, final["weight"]?.scalars)
        XCTAssertEqual(model.bias?.scalars, final["bias"]?.scalars)
        XCTAssertFalse(model.isTraining)
        // A checkpoint directory and the weights file load too.
        let checkpoint = try XCTUnwrap(Checkpoints.list(runDir: c.runDir!).last)
        XCTAssertEqual(try Trainer.loadModel(Task(), from: checkpoint).weight.scalars, final["weight"]?.scalars)
        XCTAssertEqual(try Trainer.loadModel(Task(), from: c.runDir! + "/final.safetensors").weight.scalars, final["weight"]?.scalars)
        let lines = try Trainer.evaluate(Task(), checkpoint: c.runDir!)
        XCTAssertTrue(lines[0].hasPrefix("val: loss "), "\(lines)")
        XCTAssertTrue(lines[0].contains("masked_mse"), "\(lines)")
    }

    func testAnotherTasksRunOrMissingWeightsAreOneLineErrors() throws {
        struct Wider: TrainingTask {
            var name: String { "MaskedRegression" }  // the same name, another shape
            func makeModel(generators g: ModelGenerators) -> Linear { Linear(inFeatures: 4, outFeatures: 1, generator: g.weights) }
            func trainingData() -> TaskData<PairBatch> { TaskData(count: 0) { _ in (Tensor.zeros([0]), Tensor.zeros([0])) } }
            func trainingStep(model: Linear, batch: PairBatch, log: inout MetricLog) -> Tensor { Tensor.zeros([]) }
        }
        struct Other: TrainingTask {
            var name: String { "other" }
            func makeModel(generators g: ModelGenerators) -> Linear { Linear(inFeatures: 3, outFeatures: 1, generator: g.weights) }
            func trainingData() -> TaskData<PairBatch> { TaskData(count: 0) { _ in (Tensor.zeros([0]), Tensor.zeros([0])) } }
            func trainingStep(model: Linear, batch: PairBatch, log: inout MetricLog) -> Tensor { Tensor.zeros([]) }
        }
        let c = options("errors", epochs: 1)
        _ = try Trainer.fit(Task(), options: c, settings: TrainingAPITests.noLaunch)
        XCTAssertThrowsError(try Trainer.loadModel(Other(), from: c.runDir!)) {
            XCTAssertTrue("\($0)".contains("holds a run of the task MaskedRegression, not of other"), "\($0)")
        }
        XCTAssertThrowsError(try Trainer.loadModel(Wider(), from: c.runDir!)) {
            XCTAssertTrue("\($0)".contains("does not fit MaskedRegression's model"), "\($0)")
        }
        XCTAssertThrowsError(try Trainer.loadModel(Task(), from: root + "/nowhere")) {
            XCTAssertTrue("\($0)".contains("no such run directory"), "\($0)")
        }
    }
}
