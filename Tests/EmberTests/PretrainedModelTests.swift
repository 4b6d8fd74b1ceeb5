import XCTest
@testable import Ember

/// Hugging Face directories made by `transformers` (Fixtures/pretrained from
/// scripts/generate_pretrained_fixtures.py): GPT-2 in both key layouts, Llama with grouped-query
/// attention and an untied head, Llama tied; logits and loss equal `transformers'` within 1e-4,
/// and a directory written by `savePretrained` reads back to the same logits.
final class PretrainedModelTests: XCTestCase {
    struct Expected: Decodable {
        let tokens: [[Int]], shape: [Int], logits: [Double], loss: Double
    }

    func expected() throws -> [String: Expected] { try Fixture.load("pretrained/expected.json", as: [String: Expected].self) }
    func directory(_ name: String) -> String { Fixture.url("pretrained/\(name)").path }

    func check(_ lm: CausalLM, _ e: Expected, _ name: String) {
        let tokens = Tensor(indices: e.tokens.flatMap { $0 }, shape: [e.tokens.count, e.tokens[0].count])
        let logits = noGrad { lm(tokens) }
        XCTAssertEqual(logits.shape, e.shape, name)
        XCTAssertNil(firstMismatch(logits.doubleScalars, e.logits, rtol: 1e-4, atol: 1e-4), name)
        // transformers' loss: next-token cross-entropy over every position but the last.
        let (b, t, v) = (e.shape[0], e.shape[1], e.shape[2])
        let predicted = logits.narrow(dim: 1, start: 0, length: t - 1).reshape([b * (t - 1), v])
        let targets = tokens.narrow(dim: 1, start: 1, length: t - 1).reshape([b * (t - 1)])
        XCTAssertEqual(Losses.crossEntropy(predicted, targets).doubleItem(), e.loss, accuracy: 1e-4, name)
    }

    func testLogitsAndLossEqualTransformersForEveryFamilyAndLayout() throws {
        for (name, e) in try expected().sorted(by: { $0.key < $1.key }) {
            check(try CausalLM.fromPretrained(directory(name)), e, name)
        }
    }

    func testASavedDirectoryReadsBackToTheSameModel() throws {
        let e = try expected()
        for name in ["gpt2", "llama"] {
            let out = NSTemporaryDirectory() + "ember-hf-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: out) }
            try CausalLM.fromPretrained(directory(name)).savePretrained(out)
            check(try CausalLM.fromPretrained(out), e[name]!, name + " saved")
            // scripts/generate_pretrained_fixtures.py --check-saved DIR loads these in transformers.
            if let keep = ProcessInfo.processInfo.environment["EMBER_KEEP_SAVED"] {
                try? FileManager.default.removeItem(atPath: keep + "/" + name)
                try FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: out, toPath: keep + "/" + name)
            }
        }
    }

    func testWhatItCannotComputeIsRefusedByName() throws {
        let base = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory("llama") + "/config.json"))) as? [String: Any])
        for (key, value, words) in [("model_type", "mistral" as Any, "model_type 'mistral'"), ("rope_scaling", ["type": "linear", "factor": 2.0] as Any, "rope_scaling"),
                                    ("attention_bias", true as Any, "attention_bias"), ("sliding_window", 4096 as Any, "sliding_window")] {
            var json = base
            json[key] = value
            XCTAssertThrowsError(try PretrainedConfig(json: json, path: "config.json"), key) { XCTAssertTrue("\($0)".contains(words), "\($0)") }
        }
    }

    /// Generating with the key/value cache (the prompt once, then a token at a time) gives the
    /// logits the whole-sequence forward gives at each position.
    func testTheKeyValueCacheGivesTheFullForwardsLogits() throws {
        for name in ["gpt2", "llama"] {
            let lm = try CausalLM.fromPretrained(directory(name))
            let tokens = [5, 17, 3, 42, 8, 0, 61, 2]
            let full = noGrad { lm(Tensor(indices: tokens, shape: [1, tokens.count])) }[0]
            let cache = KVCache(layers: lm.config.layers)
            var steps = [lm.nextLogits(after: Array(tokens.prefix(3)), cache: cache)]
            for t in tokens.dropFirst(3) { steps.append(lm.nextLogits(after: [t], cache: cache)) }
            XCTAssertEqual(cache.length, tokens.count)
            for (i, logits) in steps.enumerated() {
                XCTAssertNil(firstMismatch(logits.doubleScalars, full[i + 2].doubleScalars, rtol: 1e-5, atol: 1e-5), "\(name) position \(i + 2)")
            }
        }
    }
}
