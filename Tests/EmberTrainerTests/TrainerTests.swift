import XCTest
import Foundation
import Ember
import EmberDistributed
@testable import EmberTrainer

final class ConfigTests: XCTestCase {
    func testDefaultsAreValid() throws {
        try TrainerConfig().validate()
    }

    /// A preset's warm-up shrinks to fit a shorter run asked for on the command line; one the
    /// user gave is kept (and refused when it does not fit).
    func testAPresetsWarmupFitsAShorterRunButAGivenOneIsKept() throws {
        func config(_ args: [String]) throws -> TrainerConfig { try TrainOptions.parse(args).makeConfig() }
        XCTAssertEqual(try config(["--model", "gpt", "--max-steps", "30"]).warmupSteps, 1)
        XCTAssertEqual(try config(["--model", "gpt", "--max-steps", "500"]).warmupSteps, 100)
        let given = try config(["--model", "gpt", "--max-steps", "30", "--warmup-steps", "40"])
        XCTAssertEqual(given.warmupSteps, 40)
        XCTAssertThrowsError(try given.validate()) { XCTAssertTrue("\($0)".contains("--warmup-steps must be below --max-steps"), "\($0)") }
        try config(["--model", "gpt", "--max-steps", "30"]).validate()
    }

    /// `trainer eval` without --split evaluates the held-out split there is; a named split the
    /// data lacks is refused naming those there are.
    func testEvalChoosesTheHeldOutSplitAndRefusesAMissingOne() throws {
        let noTest: [(String, Int?)] = [("train", 1), ("val", 2), ("test", nil)]
        XCTAssertEqual(try CheckpointTools.chosen(noTest, nil).map(\.0), ["val"])
        XCTAssertEqual(try CheckpointTools.chosen([("train", 1), ("val", 2), ("test", 3)], nil).map(\.0), ["test"])
        XCTAssertEqual(try CheckpointTools.chosen(noTest, "all").map(\.0), ["train", "val", "test"])
        XCTAssertThrowsError(try CheckpointTools.chosen(noTest, "test")) {
            XCTAssertEqual("\($0)", "--split test: this run's data has no test split (it has train, val)")
        }
    }

    func testEveryBadOptionIsNamed() {
        let cases: [(String, (inout TrainerConfig) -> Void)] = [
            ("--model", { $0.model = "vgg" }),
            ("--epochs", { $0.epochs = 0 }),
            ("--batch-size", { $0.batchSize = 0 }),
            ("--lr", { $0.lr = -1 }),
            ("--optimizer", { $0.optimizer = "lbfgs" }),
            ("--momentum", { $0.optimizer = "adam"; $0.momentum = 0.9 }),
            ("--schedule", { $0.schedule = "exp" }),
            ("--warmup-epochs", { $0.schedule = "onecycle"; $0.warmupEpochs = 2 }),
            ("--val-fraction", { $0.valFraction = 1.5 }),
            ("--patience", { $0.valFraction = 0; $0.patience = 3 }),
            ("--data", { $0.data = "parquet:/x" }),
            ("--keep-last", { $0.keepLast = 0 }),
            ("--local-ranks", { $0.localRanks = 0 }),
            ("--log-level", { $0.logLevel = "loud" }),
            ("layers", { $0.model = "sequential" }),
        ]
        for (flag, mutate) in cases {
            var c = TrainerConfig()
            mutate(&c)
            XCTAssertThrowsError(try c.validate(), flag) { error in
                XCTAssertTrue("\(error)".contains(flag), "'\(error)' should name \(flag)")
            }
        }
    }

    func testConfigFilesRejectUnknownKeysAndWrongTypes() throws {
        let dir = NSTemporaryDirectory() + "ember-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = dir + "/good.json", typo = dir + "/typo.json", wrong = dir + "/wrong.json"
        try Data(#"{"model": "mlp", "epochs": 3, "layers": null}"#.utf8).write(to: URL(fileURLWithPath: good))
        try Data(#"{"epocs": 3}"#.utf8).write(to: URL(fileURLWithPath: typo))
        try Data(#"{"epochs": "three"}"#.utf8).write(to: URL(fileURLWithPath: wrong))
        let c = try TrainerConfig.load(good)
        XCTAssertEqual(c.model, "mlp")
        XCTAssertEqual(c.epochs, 3)
        XCTAssertEqual(c.batchSize, TrainerConfig().batchSize)
        XCTAssertThrowsError(try TrainerConfig.load(typo)) { XCTAssertTrue("\($0)".contains("'epocs'"), "\($0)") }
        XCTAssertThrowsError(try TrainerConfig.load(wrong)) { XCTAssertTrue("\($0)".contains("epochs"), "\($0)") }
        XCTAssertThrowsError(try TrainerConfig.load(dir + "/none.json")) { XCTAssertTrue("\($0)".contains("none.json"), "\($0)") }
    }

    func testModelsRejectDataTheyCannotTake() throws {
        var c = TrainerConfig()
        c.model = "cnn"
        XCTAssertThrowsError(try ModelFactory.make(c, sampleShape: [10], outputs: 3, generator: Generator(seed: 0))) { error in
            XCTAssertTrue("\(error)".contains("cnn") && "\(error)".contains("[10]"), "\(error)")
        }
        c.model = "sequential"
        c.layers = [LayerSpec(type: "conv2d", out: 4, kernel: 3)]
        XCTAssertThrowsError(try ModelFactory.make(c, sampleShape: [10], outputs: 3, generator: Generator(seed: 0))) { error in
            XCTAssertTrue("\(error)".contains("layers[0]"), "\(error)")
        }
        c.layers = [LayerSpec(type: "flatten"), LayerSpec(type: "linear", out: 8), LayerSpec(type: "relu"), LayerSpec(type: "linear")]
        let model = try ModelFactory.make(c, sampleShape: [2, 5], outputs: 3, generator: Generator(seed: 0))
        XCTAssertEqual(model(Tensor.zeros([4, 2, 5])).shape, [4, 3])
        XCTAssertEqual(try ModelFactory.make(TrainerConfig(), sampleShape: [784], outputs: 10, generator: Generator(seed: 0))(Tensor.zeros([2, 784])).shape, [2, 10])
    }
}

final class TrainingRunTests: XCTestCase {
    var root: String!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "ember-runs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        StopSignal.reset()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    func small(_ name: String, ranks: Int = 2, epochs: Int = 3) -> TrainerConfig {
        var c = TrainerConfig()
        c.model = "seednet"
        c.data = "synthetic"
        c.syntheticSamples = 240
        c.epochs = epochs
        c.batchSize = 8
        c.lr = 0.05
        c.schedule = "none"
        c.localRanks = ranks
        c.runDir = root + "/" + name
        c.logLevel = "warning"
        c.logInterval = 1000
        return c
    }

    func file(_ run: String, _ name: String) -> Data? {
        FileManager.default.contents(atPath: root + "/" + run + "/" + name)
    }

    func testARunWritesEverythingTheDesignPromises() throws {
        let summary = try Trainer.train(small("a"))
        XCTAssertEqual(summary.epochs, 3)
        XCTAssertEqual(summary.worldSize, 2)
        XCTAssertEqual(summary.globalBatch, 16)
        for name in ["config.json", "metrics.jsonl", "summary.json", "final.safetensors", "report.svg", "report.html"] {
            XCTAssertNotNil(file("a", name), name)
        }
        let json = try JSONSerialization.jsonObject(with: file("a", "summary.json")!) as! [String: Any]
        for key in ["epochs", "steps", "train_loss", "val_loss", "val_accuracy", "test_accuracy", "world_size", "samples_per_s", "wall_s"] {
            XCTAssertNotNil(json[key], key)
        }
        let lines = String(decoding: file("a", "metrics.jsonl")!, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(Checkpoints.list(runDir: root + "/a").count, 3)
        XCTAssertTrue(String(decoding: file("a", "report.svg")!, as: UTF8.self).contains("<polyline"))
        // Training learned something: the synthetic clusters are separable.
        XCTAssertGreaterThan(summary.testAccuracy ?? 0, 0.5)
    }

    func testResumingGivesBitwiseTheSameWeightsAsAnUninterruptedRun() throws {
        _ = try Trainer.train(small("full", epochs: 4))
        _ = try Trainer.train(small("part", epochs: 2))
        var resumed = small("part", epochs: 4)
        resumed.resume = "latest"
        _ = try Trainer.train(resumed) { $0.epochs = 4 }
        XCTAssertEqual(file("full", "final.safetensors"), file("part", "final.safetensors"))
    }

    /// A sharded optimizer step (Adam, clipping, accumulation), interrupted and resumed, ends
    /// bitwise where the unsharded run ends: the checkpoint holds the whole assembled state.
    func testAShardedStepResumesToTheUnshardedWeights() throws {
        func config(_ name: String, epochs: Int, sharded: Bool) -> TrainerConfig {
            var c = small(name, ranks: 2, epochs: epochs)
            c.optimizer = "adam"
            c.lr = 0.01
            c.clipNorm = 0.5
            c.gradAccumulation = 2
            c.shardOptimizer = sharded
            return c
        }
        _ = try Trainer.train(config("whole", epochs: 4, sharded: false))
        _ = try Trainer.train(config("shard", epochs: 2, sharded: true))
        var resumed = config("shard", epochs: 4, sharded: true)
        resumed.resume = "latest"
        _ = try Trainer.train(resumed) { $0.epochs = 4 }
        let whole = try Safetensors.load(root + "/whole/final.safetensors").tensors
        let shard = try Safetensors.load(root + "/shard/final.safetensors").tensors
        XCTAssertEqual(Set(whole.keys), Set(shard.keys))
        for (key, t) in whole {
            // Clipping norms are summed in another order when sharded: equal to rounding.
            let diff = zip(t.scalars, shard[key]!.scalars).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(diff, 1e-5, key)
        }
    }

    func testResumingOnAnotherWorldSizeWorks() throws {
        _ = try Trainer.train(small("w", ranks: 2, epochs: 2))
        var resumed = small("w", ranks: 3, epochs: 3)
        resumed.resume = "latest"
        let summary = try Trainer.train(resumed) { $0.epochs = 3; $0.localRanks = 3 }
        XCTAssertEqual(summary.worldSize, 3)
        XCTAssertEqual(summary.epochs, 3)
    }

    func testACorruptCheckpointIsDetectedAndThePreviousOneUsed() throws {
        _ = try Trainer.train(small("c", epochs: 3))
        let newest = Checkpoints.list(runDir: root + "/c").last!
        let model = newest + "/" + Checkpoints.modelFile
        let bytes = FileManager.default.contents(atPath: model)!
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: model))
        var warnings: [String] = []
        let loaded = try Checkpoints.latestValid(runDir: root + "/c") { warnings.append($0) }
        XCTAssertNotEqual(loaded.path, newest)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("corrupt or truncated"), warnings[0])
        XCTAssertThrowsError(try Checkpoints.load(newest)) { XCTAssertTrue("\($0)".contains("checksum"), "\($0)") }
    }

    func testAnExistingRunDirectoryIsNeverOverwritten() throws {
        let dir = root + "/taken"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        XCTAssertThrowsError(try Trainer.train(small("taken"))) { error in
            XCTAssertTrue("\(error)".contains("not empty") && "\(error)".contains("--resume"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["notes.txt"])
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/notes.txt"), Data("keep me".utf8))
    }

    /// Runs started in the same second get their own default directories (each `mkdir` wins
    /// one name), and a start that fails after making one removes it.
    func testDefaultRunDirectoriesAreNeverShared() throws {
        let base = root + "/runs/run-20261207-120000"
        let names = try (0..<3).map { _ in try Trainer.makeRunDirectory(base: base) }
        XCTAssertEqual(names, [base, base + "-2", base + "-3"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/runs").sorted(),
                       ["run-20261207-120000", "run-20261207-120000-2", "run-20261207-120000-3"])
        try RunDirectoryLock(directory: names[2], madeForThisRun: true).release(failedStart: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: names[2]))
    }

    func testMoreRanksThanSamplesAndBadDataAreClearErrors() throws {
        var c = small("few", ranks: 4)
        c.syntheticSamples = 3
        c.valFraction = 0
        c.testFraction = 0
        XCTAssertThrowsError(try Trainer.train(c)) { XCTAssertTrue("\($0)".contains("4 ranks but only 3 training samples"), "\($0)") }
        var missing = small("missing")
        missing.data = "csv:" + root + "/nope.csv"
        XCTAssertThrowsError(try Trainer.train(missing)) { XCTAssertTrue("\($0)".contains("nope.csv"), "\($0)") }
        let csv = root + "/labels.csv"
        try Data("1,2,0\n3,4,7\n5,6,1\n7,8,0\n".utf8).write(to: URL(fileURLWithPath: csv))
        var labels = small("labels", ranks: 1)
        labels.data = "csv:" + csv
        labels.numClasses = 3
        XCTAssertThrowsError(try Trainer.train(labels)) { XCTAssertTrue("\($0)".contains("label 7"), "\($0)") }
    }

    func testIDXAndNPYDirectoriesTrain() throws {
        // Tiny MNIST-format files: 40 "images" of 4×4 whose label is set by their brightest pixel.
        let idx = root + "/idx"
        try FileManager.default.createDirectory(atPath: idx, withIntermediateDirectories: true)
        var pixels: [UInt8] = [], labels: [UInt8] = []
        for i in 0..<40 {
            let label = i % 4
            var image = [UInt8](repeating: 10, count: 16)
            image[label * 5] = 250
            pixels += image
            labels.append(UInt8(label))
        }
        try IDX.writeBytes(pixels, shape: [40, 4, 4], to: idx + "/train-images-idx3-ubyte")
        try IDX.writeBytes(labels, shape: [40], to: idx + "/train-labels-idx1-ubyte")
        try IDX.writeBytes(Array(pixels.prefix(16 * 8)), shape: [8, 4, 4], to: idx + "/t10k-images-idx3-ubyte")
        try IDX.writeBytes(Array(labels.prefix(8)), shape: [8], to: idx + "/t10k-labels-idx1-ubyte")
        var c = small("idxrun", ranks: 1, epochs: 5)
        c.data = "idx:" + idx
        c.model = "mlp"
        c.valFraction = 0.2
        let summary = try Trainer.train(c)
        XCTAssertEqual(summary.testAccuracy, 1, "the test split comes from the t10k files and is easy")

        let npy = root + "/npy"
        try FileManager.default.createDirectory(atPath: npy, withIntermediateDirectories: true)
        let x = Tensor.randn([60, 3], generator: Generator(seed: 4))
        try NPY.write(x, to: npy + "/x.npy")
        try NPY.write(x.sum(dim: 1, keepDim: true), to: npy + "/y.npy")   // float targets: regression
        var r = small("npyrun", ranks: 2, epochs: 3)
        r.data = "npy:" + npy
        r.model = "mlp"
        let regression = try Trainer.train(r)
        XCTAssertNil(regression.testAccuracy)
        XCTAssertNotNil(regression.testLoss)
    }

    func testGradientAccumulationTakesOneStepPerGroupOfBatches() throws {
        var c = small("accum", ranks: 2, epochs: 1)
        c.gradAccumulation = 3
        let summary = try Trainer.train(c)
        // 240 samples: 192 train, 2 ranks, batch 8 → 12 batches per rank → 4 optimizer steps.
        XCTAssertEqual(summary.steps, 4)
    }

    func testEarlyStoppingStopsWhenValidationStallsAndNaNLossFails() throws {
        var c = small("early", ranks: 1, epochs: 30)
        c.patience = 0
        c.minDelta = 10  // nothing counts as improvement
        let summary = try Trainer.train(c)
        XCTAssertEqual(summary.epochs, 2)
        XCTAssertTrue(summary.stoppedReason.contains("early stopping"), summary.stoppedReason)
        var bad = small("nan", ranks: 1)
        bad.lr = 1e30
        XCTAssertThrowsError(try Trainer.train(bad)) { XCTAssertTrue("\($0)".contains("loss became"), "\($0)") }
    }
}

