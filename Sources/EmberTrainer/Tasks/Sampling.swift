import Ember
import Foundation

/// `trainer sample`: text from a language model's checkpoint (or run directory), or from a Hugging
/// Face model directory.
public enum Sampling {
    public struct Options {
        public var prompt = "\n", tokens = 500, temperature = 0.8, topK: Int? = 200, topP: Double? = nil, seed: UInt64 = 1337
        /// bf16: the products on the CPU's bfloat16 units (each weight rounded and packed once).
        public var precision = "fp32"
        public init() {}

        func check() throws {
            guard temperature >= 0 && temperature.isFinite else { throw ConfigError("--temperature must be 0 (greedy) or positive (got \(temperature))") }
            if let k = topK, k < 1 { throw ConfigError("--top-k must be at least 1 (got \(k))") }
            if let p = topP, !(p > 0 && p <= 1) { throw ConfigError("--top-p must be in (0, 1] (got \(p))") }
            guard tokens >= 0 else { throw ConfigError("--tokens must not be negative (got \(tokens))") }
            guard Precision(rawValue: precision) != nil else { throw ConfigError("--precision must be fp32 or bf16 (got \(precision))") }
            try Trainer.checkPrecision(precision)
        }

        /// The library's rule for drawing each token (`GenerationConfig`, as `generate` uses).
        var generation: GenerationConfig {
            GenerationConfig(maxNewTokens: tokens, doSample: temperature >= greedyBelow, temperature: temperature, topK: topK, topP: topP,
                             eosTokenIDs: [])
        }
    }

    /// Below this temperature sampling is greedy (the most likely token): dividing the logits by
    /// a smaller one overflows float32 and the draw would be over NaNs.
    public static let greedyBelow = 1e-4

    /// The prompt continued by `options.tokens` tokens, drawn from the model's distribution
    /// (scaled by the temperature, cut to the top k), seeded. `emit` receives the text as it is
    /// made (the prompt first), so a long generation shows progress; the whole text is returned.
    @discardableResult
    public static func sample(checkpoint path: String, options o: Options, emit: (String) -> Void = { _ in }) throws -> String {
        let checkpoint = try CheckpointTools.checkpoint(path)
        let config = checkpoint.state.config
        guard config.model.isLanguageModel, let saved = checkpoint.state.taskState else {
            throw ConfigError("checkpoint \(checkpoint.path) is of --model \(config.model), not a language model: trainer sample needs one (\(ModelName.languageModels.map(\.rawValue).joined(separator: ", ")))")
        }
        let tokenizer = try SavedTokenizer.decode(saved)
        try o.check()
        let g = Generator(seed: o.seed)
        let model = try LanguageModelFactory.make(config, vocabularySize: tokenizer.vocabularySize,
                                              generators: ModelGenerators(weights: Generator(seed: 0), dropout: g), dropout: 0)
        try model.loadStateDict(checkpoint.model)
        return try generate(model, tokenizer: tokenizer, window: config.blockSize, options: o, generator: g, emit: emit)
    }

    /// The same from a Hugging Face model directory (`config.json`, weights, tokenizer) as it is,
    /// without a run: what the model knows before any fine-tuning.
    @discardableResult
    public static func sample(pretrained directory: String, options o: Options, emit: (String) -> Void = { _ in }) throws -> String {
        try o.check()
        let model = try CausalLM.fromPretrained(directory), tokenizer = try BPETokenizer.fromPretrained(directory)
        return try generate(model, tokenizer: tokenizer, window: model.maxPositions, options: o, generator: Generator(seed: o.seed), emit: emit)
    }

    private static func generate(_ model: Module, tokenizer: Tokenizer, window: Int, options o: Options, generator g: Generator,
                                 emit: (String) -> Void) throws -> String {
        var context: [Int]
        do { context = try tokenizer.encodePrompt(o.prompt) } catch let e as DataError { throw ConfigError("--prompt: \(e.description)") }
        guard !context.isEmpty else { throw ConfigError("--prompt is empty") }
        model.eval()
        var text = o.prompt
        emit(o.prompt)
        var pending: [Int] = []  // tokens whose text is not complete yet (part of a UTF-8 character)
        let logitsAfter = nextLogits(model, window: window), rule = o.generation
        autocast(Precision(rawValue: o.precision) ?? .float32) { noGrad { withParametersUnchanged {
            for _ in 0..<o.tokens {
                let next = rule.nextToken(logitsAfter(context), generator: g)
                context.append(next)
                pending.append(next)
                let piece = tokenizer.decodeContinuation(pending)
                if !piece.hasSuffix("\u{FFFD}") || pending.count >= 4 {
                    emit(piece)
                    text += piece
                    pending.removeAll()
                }
            }
        } } }
        if !pending.isEmpty {
            let piece = tokenizer.decodeContinuation(pending)
            emit(piece)
            text += piece
        }
        return text
    }

    /// The next token's logits after `context`: a pretrained model keeps its keys and values
    /// (`IncrementalLogits`, which knows its own positions) and computes only the newest token;
    /// the presets run their last `window` tokens (their block size) again.
    static func nextLogits(_ model: Module, window: Int) -> ([Int]) -> Tensor {
        if let lm = model as? CausalLM { return IncrementalLogits(lm).callAsFunction }
        return { context in
            let w = Array(context.suffix(window))
            return model(Tensor(indices: w, shape: [1, w.count]))[0][w.count - 1]
        }
    }
}
