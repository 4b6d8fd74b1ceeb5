/// Text generation from a causal language model, as `transformers`' `model.generate` does it:
/// greedy by default; with `doSample`, a draw after the temperature, top-k and top-p filters, in
/// that order; stopping at an end-of-sequence token.
public struct GenerationConfig {
    /// Tokens to add after the prompt (at most: an end-of-sequence token stops earlier).
    public var maxNewTokens: Int
    /// false: the most likely token each time (greedy); true: a draw from the filtered distribution.
    public var doSample: Bool
    /// The logits are divided by it before drawing (below 1 sharper, above 1 flatter).
    public var temperature: Double
    /// Draw only among the k most likely tokens (nil: all).
    public var topK: Int?
    /// Draw only among the most likely tokens whose probabilities add up to p (nucleus sampling;
    /// the most likely token always stays; nil: all).
    public var topP: Double?
    /// Stop after any of these tokens (it is kept in the output). nil: the model's own
    /// (`eos_token_id` of its config.json); [] never stops early.
    public var eosTokenIDs: [Int]?

    public init(maxNewTokens: Int = 20, doSample: Bool = false, temperature: Double = 1, topK: Int? = 50, topP: Double? = nil,
                eosTokenIDs: [Int]? = nil) {
        (self.maxNewTokens, self.doSample, self.temperature) = (maxNewTokens, doSample, temperature)
        (self.topK, self.topP, self.eosTokenIDs) = (topK, topP, eosTokenIDs)
    }

    /// The problem with these settings, if any (a negative count, a temperature that is not
    /// positive, a top-k below 1, a top-p outside (0, 1]).
    public var problem: String? {
        if maxNewTokens < 0 { return "maxNewTokens must not be negative (got \(maxNewTokens))" }
        guard doSample else { return nil }
        if !(temperature > 0 && temperature.isFinite) { return "temperature must be positive when sampling (got \(temperature)); greedy is doSample false" }
        if let k = topK, k < 1 { return "topK must be at least 1 (got \(k))" }
        if let p = topP, !(p > 0 && p <= 1) { return "topP must be in (0, 1] (got \(p))" }
        return nil
    }

    /// The next token from one position's logits `[vocab]`.
    public func nextToken(_ logits: Tensor, generator: Generator = .default) -> Int {
        require(problem == nil, "GenerationConfig: \(problem ?? "")")
        require(logits.rank == 1, "nextToken takes one position's logits [vocab], got shape \(logits.shape)")
        guard doSample else { return logits.argmax(dim: 0).intScalars[0] }
        var scaled = logits.to(.float32) / temperature
        if let k = topK, k < scaled.count {
            let kth = scaled.topk(k).values.scalars.last!
            scaled = scaled.maskedFill(scaled.lt(Double(kth)), -.infinity)
        }
        var probabilities = scaled.softmax(dim: 0)
        if let p = topP, p < 1 { probabilities = Self.nucleus(probabilities, p) }
        return probabilities.multinomial(1, generator: generator).intScalars[0]
    }

    /// The probabilities with every token dropped whose more likely tokens already hold `p` of
    /// the mass (`transformers`' top-p rule).
    static func nucleus(_ probabilities: Tensor, _ p: Double) -> Tensor {
        let values = probabilities.doubleScalars
        var kept = [Double](repeating: 0, count: values.count), before = 0.0
        for i in values.indices.sorted(by: { values[$0] > values[$1] }) where before < p {
            kept[i] = values[i]
            before += values[i]
        }
        return Tensor(kept, shape: [kept.count], dtype: .float64)
    }
}

/// Runs `body`, in which no parameter changes (sampling from a model), so that under bf16
/// autocast each parameter is rounded to bfloat16 once for all of it rather than at every
/// product (what `IncrementalLogits` does for a `CausalLM`; this is for any model).
public func withParametersUnchanged<R>(_ body: () throws -> R) rethrows -> R {
    try ParameterRoundings().using(body)
}

/// The next token's logits after a context that grows at its end, for a `CausalLM` whose weights
/// stay as they are while it is used: the keys and values are cached (`KVCache`), so each call
/// computes only the new tokens, and under bf16 autocast each weight is rounded to bfloat16 once,
/// not at every token. A context longer than `window` (by default GPT-2's learned positions;
/// none for Llama, whose rotary positions go on, as `transformers` lets them) is cut to its last
/// positions and the cache filled again from them, with room to grow.
public final class IncrementalLogits {
    let model: CausalLM, window: Int
    var cache: KVCache, seen = 0
    let roundings = ParameterRoundings()

    public init(_ model: CausalLM, window: Int? = nil) {
        self.model = model
        self.window = max(2, window ?? (model.config.family == .gpt2 ? model.maxPositions : .max))
        cache = KVCache(layers: model.config.layers)
    }

    /// Logits `[vocab]` after `context`, which holds the previous call's context at its start.
    public func callAsFunction(_ context: [Int]) -> Tensor {
        roundings.using { next(context) }
    }

    private func next(_ context: [Int]) -> Tensor {
        require(context.count > seen, "IncrementalLogits: the context must grow at its end (had \(seen) tokens, got \(context.count))")
        if seen == 0 || cache.length + context.count - seen > window {
            // Start, or the window is full: fill again from the context's end, leaving room.
            let keep = seen == 0 ? window : max(1, window / 2)
            cache = KVCache(layers: model.config.layers)
            seen = context.count
            return model.nextLogits(after: Array(context.suffix(keep)), cache: cache)
        }
        let new = Array(context[seen...])
        seen = context.count
        return model.nextLogits(after: new, cache: cache)
    }
}

extension CausalLM {
    /// `prompt` followed by up to `config.maxNewTokens` generated tokens (`model.generate`):
    /// keys and values are cached, so each new token costs one position. `onToken` sees each new
    /// token as it is made (to print text as it comes). Draws come from `generator`.
    public func generate(_ prompt: [Int], config g: GenerationConfig = GenerationConfig(), generator: Generator = .default,
                         onToken: (Int) -> Void = { _ in }) throws -> [Int] {
        if let problem = g.problem { throw DataError("generate: \(problem)") }
        guard !prompt.isEmpty else { throw DataError("generate: the prompt is empty (give at least one token, e.g. a beginning-of-sequence id)") }
        if let bad = prompt.first(where: { $0 < 0 || $0 >= config.vocabularySize }) {
            throw DataError("generate: token id \(bad) is outside the model's vocabulary of \(config.vocabularySize)")
        }
        let stops = Set(g.eosTokenIDs ?? config.eosTokenIDs)
        let logits = IncrementalLogits(self)
        var tokens = prompt
        let wasTraining = isTraining
        eval()
        defer { if wasTraining { train() } }
        for _ in 0..<g.maxNewTokens {
            let next = g.nextToken(logits(tokens), generator: generator)
            tokens.append(next)
            onToken(next)
            if stops.contains(next) { break }
        }
        return tokens
    }
}
