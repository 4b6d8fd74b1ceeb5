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

    /// Loading builds the model without drawing its soon-replaced weights: the default generator
    /// is where it was (and a 124M GPT-2 loads in half the time).
    func testLoadingDrawsNoRandomNumbers() throws {
        for name in ["gpt2", "llama"] {
            let before = Generator.default.stateWords
            _ = try CausalLM.fromPretrained(directory(name))
            XCTAssertEqual(Generator.default.stateWords, before, name)
        }
        XCTAssertEqual(Tensor.randn([3], generator: .placeholder).scalars, [0, 0, 0])
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
        for (key, value, words) in [("model_type", "mistral" as Any, "model_type 'mistral'"), ("rope_scaling", ["type": "linear", "factor": 2.0] as Any, "rope scaling of type 'linear'"),
                                    ("rope_parameters", ["rope_type": "yarn", "factor": 4.0] as Any, "rope scaling of type 'yarn'"),
                                    ("rope_scaling", ["rope_type": "llama3", "factor": 8.0] as Any, "llama3 rope scaling without a number 'low_freq_factor'"),
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

/// Checkpoints as `transformers` also writes them: sharded (`model.safetensors.index.json`) and
/// in half precision (`torch_dtype` bfloat16 or float16), converted to float32 as they load.
extension PretrainedModelTests {
    /// `name`'s directory with its weights rewritten by `write` (config and the rest copied).
    func rewritten(_ name: String, _ write: (String, [String: Tensor]) throws -> Void) throws -> String {
        let out = NSTemporaryDirectory() + "ember-hf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: directory(name)) where file != "model.safetensors" {
            try FileManager.default.copyItem(atPath: directory(name) + "/" + file, toPath: out + "/" + file)
        }
        try write(out, try Safetensors.load(directory(name) + "/model.safetensors").tensors)
        return out
    }

    /// Weights read one tensor at a time are checked as a whole first: a missing tensor or one
    /// of another shape is named, and nothing is half loaded.
    func testWeightsThatDoNotFitTheConfigAreNamed() throws {
        func message(_ out: String) -> String {
            defer { try? FileManager.default.removeItem(atPath: out) }
            do { _ = try CausalLM.fromPretrained(out); return "" } catch { return "\(error)" }
        }
        let missing = try rewritten("llama") { out, tensors in
            _ = try Safetensors.save(tensors.filter { $0.key != "model.norm.weight" }, to: out + "/model.safetensors")
        }
        let refused = message(missing)
        XCTAssertTrue(refused.contains("do not fit its config.json") && refused.contains("model.norm.weight"), refused)
        let reshaped = try rewritten("gpt2") { out, tensors in
            var t = tensors
            t["transformer.wpe.weight"] = Tensor.zeros([16, 32])
            _ = try Safetensors.save(t, to: out + "/model.safetensors")
        }
        let mismatch = message(reshaped)
        XCTAssertTrue(mismatch.contains("transformer.wpe.weight"), mismatch)
    }

    func testShardedCheckpointsLoadToTheSameLogits() throws {
        let e = try expected()
        for name in ["gpt2", "llama"] {
            let out = try rewritten(name) { out, tensors in
                let keys = tensors.keys.sorted(), half = keys.count / 2
                var map: [String: String] = [:]
                for (i, part) in [Array(keys[..<half]), Array(keys[half...])].enumerated() {
                    let file = "model-0000\(i + 1)-of-00002.safetensors"
                    try Safetensors.save(Dictionary(uniqueKeysWithValues: part.map { ($0, tensors[$0]!) }), metadata: ["format": "pt"], to: out + "/" + file)
                    for k in part { map[k] = file }
                }
                let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map])
                try index.write(to: URL(fileURLWithPath: out + "/model.safetensors.index.json"))
            }
            defer { try? FileManager.default.removeItem(atPath: out) }
            check(try CausalLM.fromPretrained(out), e[name]!, name + " sharded")
        }
    }

    func testHalfPrecisionCheckpointsLoadAsTheirValuesInFloat32() throws {
        let e = try expected()
        for (name, stored) in [("gpt2", SafetensorsDType.BF16), ("llama", .F16), ("llama-tied", .BF16)] {
            var rounded: [String: Tensor] = [:]
            let half = try rewritten(name) { out, tensors in
                var storing: [String: SafetensorsDType] = [:]
                for (k, t) in tensors where t.dtype == .float32 { storing[k] = stored }
                try Safetensors.save(tensors, metadata: ["format": "pt"], storing: storing, to: out + "/model.safetensors")
                rounded = try Safetensors.load(out + "/model.safetensors").tensors.mapValues { $0.dtype == .bfloat16 ? $0.to(.float32) : $0 }
            }
            // The same values stored as float32: what the half-precision file must load as.
            let full = try rewritten(name) { out, _ in try Safetensors.save(rounded, metadata: ["format": "pt"], to: out + "/model.safetensors") }
            defer { for d in [half, full] { try? FileManager.default.removeItem(atPath: d) } }
            let loaded = try CausalLM.fromPretrained(half), reference = try CausalLM.fromPretrained(full)
            XCTAssertTrue(loaded.parameters().allSatisfy { $0.dtype == .float32 }, "\(name): weights are float32 for training")
            let tokens = Tensor(indices: e[name]!.tokens.flatMap { $0 }, shape: [e[name]!.tokens.count, e[name]!.tokens[0].count])
            let logits = noGrad { loaded(tokens) }.scalars
            XCTAssertEqual(logits, noGrad { reference(tokens) }.scalars, "\(name) stored as \(stored)")
            XCTAssertNotEqual(logits, noGrad { try! CausalLM.fromPretrained(directory(name))(tokens) }.scalars,
                              "\(name): the rounded values are what loaded")
        }
    }
}
