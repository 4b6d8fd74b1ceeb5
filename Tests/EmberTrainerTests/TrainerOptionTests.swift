import XCTest
import Foundation
import Ember
@testable import EmberTrainer

/// Each option is defined once (`TrainerOption.all`): the config keys, the flags, the checks and
/// the docs table all come from that definition.
final class TrainerOptionTests: XCTestCase {
    func testEveryConfigKeyHasExactlyOneOption() {
        let keys = TrainerOption.all.map(\.key)
        XCTAssertEqual(keys.count, Set(keys).count, "an option is defined twice")
        XCTAssertEqual(Set(keys).union(["layers"]), TrainerConfig.knownKeys, "config keys and options differ")
    }

    func testTheDocsTableIsTheGeneratedOne() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/trainer.md").standardized
        let text = try String(contentsOf: docs, encoding: .utf8)
        XCTAssertTrue(text.contains(TrainerOption.markdownTable),
                      "docs/trainer.md's options table is not TrainerOption.markdownTable: run `trainer options` and paste its output")
    }

    func testFlagsParseIntoTheConfigAndBadValuesNameTheFlag() throws {
        let parsed = try TrainerOption.parse(["--epochs", "7", "--lr", "-1", "--label-column=-2", "--no-overlap", "--standardize", "--optimizer", "adam"])
        var c = TrainerConfig()
        for (option, text) in parsed.settings { try option.set(text, &c) }
        XCTAssertEqual(c.epochs, 7)
        XCTAssertEqual(c.lr, -1)
        XCTAssertEqual(c.labelColumn, -2)
        XCTAssertEqual(c.overlap, false)
        XCTAssertTrue(c.standardize)
        XCTAssertEqual(c.optimizer, .adam)
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--lr must be a positive number"), "\($0)") }
        XCTAssertThrowsError(try TrainerOption.parse(["--epoch", "3"])) { XCTAssertTrue("\($0)".contains("'--epoch' (did you mean --epochs"), "\($0)") }
        XCTAssertThrowsError(try TrainerOption.parse(["--epochs"])) { XCTAssertTrue("\($0)".contains("--epochs needs a value"), "\($0)") }
        var d = TrainerConfig()
        XCTAssertThrowsError(try TrainerOption.named("--epochs")!.option.set("x", &d)) { XCTAssertTrue("\($0)".contains("--epochs must be a whole number"), "\($0)") }
        XCTAssertThrowsError(try TrainerOption.named("--optimizer")!.option.set("lbfgs", &d)) { _ in }
        d.optimizer = "lbfgs"
        XCTAssertThrowsError(try d.validate()) { XCTAssertTrue("\($0)".contains("--optimizer lbfgs is not one of sgd, adam"), "\($0)") }
    }

    func testARegisteredModelIsAModelChoice() throws {
        XCTAssertThrowsError(try TrainerOption.named("--model")!.option.set("option-test-net", &scratch))
        ModelRegistry.register("option-test-net") { input in Linear(inFeatures: input.features, outFeatures: input.outputs) }
        try TrainerOption.named("--model")!.option.set("option-test-net", &scratch)
        XCTAssertEqual(scratch.model, "option-test-net")
        XCTAssertNoThrow(try scratch.validate())
    }

    var scratch = TrainerConfig()
}
