import Ember
import Foundation

extension Bench {
    /// Greedy generation from a Hugging Face directory (`trainer bench --pretrained DIR --generate
    /// N`): N new tokens after a 16-token prompt, every one computed (no end-of-sequence stop),
    /// after a short warm-up; `examples/pytorch/pretrained_bench.py DIR --generate N` is the twin.
    public static func generation(_ directory: String, tokens: Int, threads: Int, precision: Precision) throws -> String {
        setNumThreads(threads)
        let lm = try CausalLM.fromPretrained(directory)
        let prompt = Tensor.randint(high: lm.config.vocabularySize, [16], generator: Generator(seed: 0)).intScalars
        let greedy = GenerationConfig(maxNewTokens: tokens, eosTokenIDs: [])
        let start = try autocast(precision) { () throws -> Date in
            _ = try lm.generate(prompt, config: GenerationConfig(maxNewTokens: 4, eosTokenIDs: []))
            let start = Date()
            _ = try lm.generate(prompt, config: greedy)
            return start
        }
        let rate = Double(tokens) / Date().timeIntervalSince(start)
        return String(format: "generate threads=%d new_tokens=%d tokens_per_s=%.1f products=%@", threads, tokens, rate, ProductEngine.description)
            + (precision == .bfloat16 ? " precision=bf16 bf16_units=\(Precision.bfloat16Units ?? "emulated")" : "")
    }
}
