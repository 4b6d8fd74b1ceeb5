import XCTest
import Foundation
import Ember
@testable import EmberTrainer

/// `--model gpt` end to end on a small text: training by steps, per-token validation over the
/// ranks, bitwise resume, sampling.
final class LanguageModelTests: RunDirectoryTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        // A learnable text: a few lines repeated.
        let text = String(repeating: "ROMEO: to be or not to be.\nJULIET: that is the question.\n", count: 60)
        try text.write(toFile: root + "/corpus.txt", atomically: true, encoding: .utf8)
    }

    func config(_ name: String, steps: Int = 12, ranks: Int = 2) -> TrainerConfig {
        var c = TrainerConfig(model: .gpt)
        c.data = "text:" + root + "/corpus.txt"
        (c.nLayer, c.nHead, c.nEmbd, c.blockSize) = (1, 2, 16, 16)
        (c.maxSteps, c.evalInterval, c.warmupSteps, c.batchSize) = (steps, 6, 2, 4)
        c.lr = 3e-3
        c.localRanks = ranks
        c.runDir = root + "/" + name
        c.logLevel = "warning"
        return c
    }

    func testTrainingByStepsValidatesEveryIntervalAndLearns() throws {
        let summary = try Trainer.train(config("a", steps: 36))
        XCTAssertEqual(summary.steps, 36)
        XCTAssertEqual(summary.epochs, 6)
        let lines = String(decoding: FileManager.default.contents(atPath: root + "/a/metrics.jsonl")!, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, 6)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let last = try JSONSerialization.jsonObject(with: Data(lines[5].utf8)) as! [String: Any]
        XCTAssertEqual(first["step"] as? Int, 6)
        XCTAssertNotNil(last["val_perplexity"])
        XCTAssertNotNil(last["tokens_per_s"])
        let (v0, v1) = (first["val_loss"] as! Double, last["val_loss"] as! Double)
        XCTAssertLessThan(v1, v0 - 0.3, "the validation loss should fall on a repetitive text")
        XCTAssertEqual(last["val_perplexity"] as! Double, Foundation.exp(v1), accuracy: 1e-9 * Foundation.exp(v1))
        // The learning rate followed warm-up then cosine to lr/10... the last step's rate is the floor.
        XCTAssertEqual(last["lr"] as! Double, 1e-4, accuracy: 1e-12)
    }

    /// The validation loss is the same (to rounding) on one rank or three: each rank evaluates
    /// its share of the windows, the sums are combined exactly.
    func testValidationLossDoesNotDependOnTheRanks() throws {
        var one = config("v1", steps: 6, ranks: 1), three = config("v3", steps: 6, ranks: 3)
        one.maxSteps = 6; three.maxSteps = 6
        one.lr = 1e-9; three.lr = 1e-9  // the weights barely move: the same model evaluated
        one.minLr = nil; three.minLr = nil
        let a = try Trainer.train(one), b = try Trainer.train(three)
        XCTAssertEqual(a.valLoss!, b.valLoss!, accuracy: 1e-5)
    }

    /// Stopped after 6 of 12 steps (by a callback, at a checkpoint) and resumed: the same bits
    /// as the uninterrupted run (the schedule depends on --max-steps, so both runs have 12).
    func testResumingGivesBitwiseTheSameWeights() throws {
        _ = try Trainer.train(config("full", steps: 12))
        let part = config("part", steps: 12)
        let task = LanguageModelTask(config: part, text: try PreparedText(part, dataDirectory: nil))
        _ = try Trainer.fit(task, options: part, callbacks: { [StopAfter(step: 6)] })
        XCTAssertEqual(Checkpoints.list(runDir: root + "/part").count, 1)
        var resumed = part
        resumed.resume = "latest"
        let summary = try Trainer.train(resumed)
        XCTAssertEqual(summary.steps, 12)
        XCTAssertEqual(FileManager.default.contents(atPath: root + "/full/final.safetensors"),
                       FileManager.default.contents(atPath: root + "/part/final.safetensors"))
    }

    /// A run by steps that ended inside a validation period (4 steps of a 6-step interval),
    /// resumed with more steps, goes on with that period: it trains the steps it was given, and
    /// then has nothing left to train.
    func testAShortRunByStepsGoesOnWhenGivenMoreSteps() throws {
        var c = config("short", steps: 4, ranks: 1)
        c.warmupSteps = 1
        _ = try Trainer.train(c)
        var more = c
        more.resume = "latest"
        XCTAssertEqual(try Trainer.train(more) { $0.maxSteps = 9 }.steps, 9)
        let lines = String(decoding: FileManager.default.contents(atPath: root + "/short/metrics.jsonl")!, as: UTF8.self).split(separator: "\n")
        let steps = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }.map { $0["step"] as? Int }
        XCTAssertEqual(steps, [4, 6, 9], "the period cut at step 4 ends at 6, then the run's last")
        XCTAssertEqual(try Trainer.train(more) { $0.maxSteps = 9 }.steps, 9)
        let after = String(decoding: FileManager.default.contents(atPath: root + "/short/metrics.jsonl")!, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(after.count, 3, "a resume with nothing to train adds no record")
    }

    /// `trainer eval --data` measures a character-level run on another text through the run's
    /// own alphabet; a character outside it is named.
    func testEvaluatingAnotherTextUsesTheRunsAlphabet() throws {
        _ = try Trainer.train(config("e", steps: 6, ranks: 1))
        try String(repeating: "JULIET: to be.\n", count: 40).write(toFile: root + "/other.txt", atomically: true, encoding: .utf8)
        let lines = try CheckpointTools.evaluate(checkpoint: root + "/e", data: "text:" + root + "/other.txt", split: "all").split(separator: "\n")
        XCTAssertTrue(lines[0].hasPrefix("train: ") && lines[1].hasPrefix("val: "), "\(lines)")
        try "JULIET: zebra?\n".write(toFile: root + "/new.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CheckpointTools.evaluate(checkpoint: root + "/e", data: "text:" + root + "/new.txt", split: nil)) {
            XCTAssertTrue("\($0)".contains("\"z\" is not in the tokenizer's alphabet"), "\($0)")
        }
    }

    func testSamplingContinuesThePromptFromTheRunsTokenizer() throws {
        _ = try Trainer.train(config("s", steps: 6))
        var o = Sampling.Options()
        (o.prompt, o.tokens, o.seed) = ("ROMEO", 40, 3)
        let text = try Sampling.sample(checkpoint: root + "/s", options: o)
        XCTAssertTrue(text.hasPrefix("ROMEO"))
        XCTAssertEqual(text.unicodeScalars.count, 5 + 40)
        XCTAssertEqual(text, try Sampling.sample(checkpoint: root + "/s", options: o), "seeded")
        o.prompt = "Zebra"
        XCTAssertThrowsError(try Sampling.sample(checkpoint: root + "/s", options: o)) { XCTAssertTrue("\($0)".contains("\"Z\""), "\($0)") }
    }

    /// `--model lstm`: the recurrent preset trains on the same text (two ranks as threads), its
    /// weights carry PyTorch's keys, and its checkpoints sample.
    func testTheLSTMPresetTrainsAndSamples() throws {
        var c = config("lstm", steps: 24)
        c.model = .lstm
        (c.nLayer, c.nEmbd, c.hiddenSize) = (2, 8, 16)
        let summary = try Trainer.train(c)
        let lines = String(decoding: FileManager.default.contents(atPath: root + "/lstm/metrics.jsonl")!, as: UTF8.self).split(separator: "\n")
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        XCTAssertLessThan(summary.valLoss!, first["val_loss"] as! Double)
        let state = try Safetensors.load(root + "/lstm/final.safetensors").tensors
        XCTAssertEqual(state["lstm.weight_ih_l1"]?.shape, [64, 16])
        XCTAssertEqual(state["lstm.weight_hh_l0"]?.shape, [64, 16])
        var o = Sampling.Options()
        (o.prompt, o.tokens) = ("JULIET", 20)
        XCTAssertEqual(try Sampling.sample(checkpoint: root + "/lstm", options: o).unicodeScalars.count, 26)
    }

    func testTextDataNeedsALanguageModelAndViceVersa() {
        var c = TrainerConfig()
        c.data = "shakespeare"
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("language models"), "\($0)") }
        var g = TrainerConfig(model: .gpt)
        g.data = "mnist5k"
        XCTAssertThrowsError(try g.validate()) { XCTAssertTrue("\($0)".contains("trains on text"), "\($0)") }
        g = TrainerConfig(model: .gpt)
        g.nHead = 3
        XCTAssertThrowsError(try g.validate()) { XCTAssertTrue("\($0)".contains("--n-embd 128 must be divisible by --n-head 3"), "\($0)") }
    }

    func testAShortRunIsToldTheWarmupItDidNotGiveIsThePresets() {
        var g = TrainerConfig(model: .gpt)
        g.maxSteps = 50
        XCTAssertThrowsError(try g.validate()) { XCTAssertTrue("\($0)".contains("(got 100 with --max-steps 50, the gpt preset's default"), "\($0)") }
        g.warmupSteps = 60
        XCTAssertThrowsError(try g.validate()) { XCTAssertTrue("\($0)".hasSuffix("(got 60 with --max-steps 50)"), "\($0)") }
    }
}

/// Asks training to stop once `step` optimizer steps are done.
final class StopAfter: TrainingCallback {
    let step: Int
    init(step: Int) { self.step = step }
    var ranks: CallbackRanks { .everyRank }
    func stepEnded(_ context: TrainingContext) { if context.step == step { context.requestStop("test stop") } }
}

/// Training by steps: nanoGPT's warm-up, then a cosine that reaches the floor at the last step.
final class StepScheduleTests: XCTestCase {
    func testWarmupThenCosineToTheFloorAtTheLastStep() {
        var c = TrainerConfig(model: .gpt)
        (c.maxSteps, c.warmupSteps, c.lr, c.minLr) = (2000, 100, 1e-3, 1e-4)
        let s = StepSchedule(config: c)
        XCTAssertEqual(s.learningRate(step: 0)!, 1e-3 * 1 / 101, accuracy: 1e-15)
        XCTAssertEqual(s.learningRate(step: 99)!, 1e-3 * 100 / 101, accuracy: 1e-15)
        XCTAssertEqual(s.learningRate(step: 100)!, 1e-3, accuracy: 1e-15)
        let mid = 100 + (1999 - 100) / 2
        XCTAssertEqual(s.learningRate(step: mid)!, 1e-4 + 0.5 * (1 + cos(Double.pi * Double(mid - 100) / 1899)) * 9e-4, accuracy: 1e-15)
        XCTAssertEqual(s.learningRate(step: 1999)!, 1e-4, accuracy: 1e-15)
        c.maxSteps = nil
        XCTAssertNil(StepSchedule(config: c).learningRate(step: 5), "by epochs, the epoch schedule owns the rate")
    }
}
