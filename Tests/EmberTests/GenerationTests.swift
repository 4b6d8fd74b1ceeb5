import XCTest
@testable import Ember

/// `CausalLM.generate` and `GenerationConfig` on the tiny Hugging Face fixtures: greedy
/// generation through the key/value cache equals the argmax of the whole sequence's logits run
/// again at every step (and `transformers`' own greedy `generate`, Fixtures/pretrained/
/// generation.json from scripts/generate_generation_fixture.py); the sampling filters follow
/// `transformers`' rules; a model's end-of-sequence token stops it; mistakes are errors.
final class GenerationTests: XCTestCase {
    func model(_ name: String) throws -> CausalLM { try CausalLM.fromPretrained(Fixture.url("pretrained/\(name)").path) }

    /// The greedy continuation computed without a cache: the whole sequence again at each step.
    func uncachedGreedy(_ lm: CausalLM, _ prompt: [Int], _ n: Int) -> [Int] {
        var tokens = prompt
        noGrad {
            for _ in 0..<n {
                let logits = lm(Tensor(indices: tokens, shape: [1, tokens.count]))[0][tokens.count - 1]
                tokens.append(logits.argmax(dim: 0).intScalars[0])
            }
        }
        return tokens
    }

    func testGreedyThroughTheCacheEqualsRunningTheWholeSequenceAgain() throws {
        // Llama's 70 tokens outgrow the cache's first buffers (64 positions): they are moved.
        for (name, n) in [("gpt2", 20), ("llama", 70), ("llama-tied", 70)] {
            let lm = try model(name)
            let prompt = [3, 17, 5, 42, 8]
            let out = try lm.generate(prompt, config: GenerationConfig(maxNewTokens: n, eosTokenIDs: []))
            XCTAssertEqual(out, uncachedGreedy(lm, prompt, n), name)
        }
    }

    func testGreedyEqualsTransformersGenerate() throws {
        struct Case: Decodable { let prompt: [Int], maxNewTokens: Int, output: [Int] }
        let cases = try Fixture.load("pretrained/generation.json", as: [String: Case].self)
        XCTAssertFalse(cases.isEmpty)
        for (name, c) in cases.sorted(by: { $0.key < $1.key }) {
            // transformers stops at the config's eos_token_id, as generate does by default.
            XCTAssertEqual(try model(name).generate(c.prompt, config: GenerationConfig(maxNewTokens: c.maxNewTokens)), c.output, name)
        }
    }

    func testGenerationGoesOnPastTheModelsPositions() throws {
        let lm = try model("gpt2")  // 32 learned positions: the cache is filled again from the end
        let out = try lm.generate([1, 2, 3], config: GenerationConfig(maxNewTokens: 80, doSample: true, eosTokenIDs: []),
                                  generator: Generator(seed: 3))
        XCTAssertEqual(out.count, 83)
        XCTAssertTrue(out.allSatisfy { (0..<lm.config.vocabularySize).contains($0) })
    }

    func testAnEndOfSequenceTokenStopsAndIsKept() throws {
        let lm = try model("llama")
        let prompt = [3, 17, 5]
        let free = try lm.generate(prompt, config: GenerationConfig(maxNewTokens: 10, eosTokenIDs: []))
        let stop = free[prompt.count + 3]
        let cut = try lm.generate(prompt, config: GenerationConfig(maxNewTokens: 10, eosTokenIDs: [stop]))
        XCTAssertEqual(cut, Array(free[...(free.firstIndex(of: stop, after: prompt.count))]))
        XCTAssertEqual(lm.config.eosTokenIDs, [2])
    }

    func testSamplingIsSeededAndItsNarrowestFiltersAreGreedy() throws {
        let lm = try model("llama")
        let prompt = [3, 17, 5], greedy = try lm.generate(prompt, config: GenerationConfig(maxNewTokens: 12, eosTokenIDs: []))
        func sampled(_ g: GenerationConfig, seed: UInt64) throws -> [Int] { try lm.generate(prompt, config: g, generator: Generator(seed: seed)) }
        let wide = GenerationConfig(maxNewTokens: 12, doSample: true, temperature: 1.5, topK: nil, eosTokenIDs: [])
        XCTAssertEqual(try sampled(wide, seed: 7), try sampled(wide, seed: 7))
        XCTAssertNotEqual(try sampled(wide, seed: 7), greedy)  // 12 draws over 64 tokens at a high temperature
        XCTAssertEqual(try sampled(GenerationConfig(maxNewTokens: 12, doSample: true, topK: 1, eosTokenIDs: []), seed: 7), greedy)
        XCTAssertEqual(try sampled(GenerationConfig(maxNewTokens: 12, doSample: true, topK: nil, topP: 1e-6, eosTokenIDs: []), seed: 7), greedy)
    }

    func testTopPKeepsTheTokensWhoseMoreLikelyOnesHoldLessThanP() {
        let p = Tensor([0.05, 0.5, 0.15, 0.3], shape: [4], dtype: .float64)
        // transformers: sorted ascending, cumulative 0.05, 0.2, 0.5, 1.0; those ≤ 1 − p go.
        XCTAssertEqual(GenerationConfig.nucleus(p, 0.8).doubleScalars, [0, 0.5, 0, 0.3])
        XCTAssertEqual(GenerationConfig.nucleus(p, 0.81).doubleScalars, [0, 0.5, 0.15, 0.3])
        XCTAssertEqual(GenerationConfig.nucleus(p, 0.1).doubleScalars, [0, 0.5, 0, 0])
        // Draws land only on what the filters keep.
        let logits = Tensor([Float(2), 1, 0.5, -1, 3], shape: [5])
        let g = GenerationConfig(doSample: true, topK: 3, topP: 0.7), generator = Generator(seed: 1)
        let drawn = Set((0..<300).map { _ in g.nextToken(logits, generator: generator) })
        XCTAssertEqual(drawn, [0, 4])  // top 3: {4, 0, 1}; probabilities 0.665, 0.245, 0.090: 4 alone holds < 0.7
    }

    func testUnderBF16EachWeightIsRoundedOnceAndTheLogitsFollowTheWholeSequence() throws {
        guard Precision.bfloat16IsNative else { throw XCTSkip("no bfloat16 units here: operands are rounded with them only") }
        for name in ["gpt2", "llama"] {
            let lm = try model(name), context = [3, 17, 5, 42, 8, 9, 1, 30, 12, 7]
            let weights = lm.parameters().reduce(0) { $0 + $1.count }
            let incremental = IncrementalLogits(lm)
            try autocast(.bfloat16) { try noGrad {
                _ = incremental(Array(context[..<5]))  // the prompt
                _ = incremental(Array(context[..<6]))  // the first token: the weights are packed
                for t in 7...context.count {
                    let before = Kernels.roundedValues
                    let next = incremental(Array(context[..<t]))
                    // Only the token's activations are rounded now, not the weights again.
                    XCTAssertLessThan(Kernels.roundedValues - before, weights / 4, name)
                    let whole = lm(Tensor(indices: Array(context[..<t]), shape: [1, t]))[0][t - 1]
                    let scale = whole.abs().max().doubleItem()
                    XCTAssertNil(firstMismatch(next.doubleScalars, whole.doubleScalars, rtol: 0, atol: 0.03 * scale), "\(name) at \(t)")
                }
            } }
        }
    }

    func testMistakesAreErrorsNamingThem() throws {
        let lm = try model("gpt2")
        func message(_ prompt: [Int], _ g: GenerationConfig) -> String {
            do { _ = try lm.generate(prompt, config: g); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message([], GenerationConfig()).contains("the prompt is empty"))
        XCTAssertTrue(message([1, 64], GenerationConfig()).contains("token id 64 is outside the model's vocabulary of 64"))
        XCTAssertTrue(message([1], GenerationConfig(doSample: true, topP: 1.5)).contains("topP must be in (0, 1]"))
        XCTAssertTrue(message([1], GenerationConfig(doSample: true, temperature: 0)).contains("temperature must be positive"))
        XCTAssertTrue(message([1], GenerationConfig(maxNewTokens: -1)).contains("maxNewTokens must not be negative"))
    }
}

private extension Array where Element == Int {
    func firstIndex(of value: Int, after start: Int) -> Int { self[start...].firstIndex(of: value)! }
}
