import Foundation

/// A Hugging Face `config.json` of a causal language model Ember can run: GPT-2's family
/// (`model_type: gpt2`) or Llama's (`llama`). Every key that would change the computation and
/// that Ember does not implement is refused by name, never ignored.
public struct PretrainedConfig: @unchecked Sendable {  // `json` is never mutated
    public enum Family: String, Sendable { case gpt2, llama }
    public let family: Family
    public let vocabularySize: Int, hiddenSize: Int, layers: Int, heads: Int, keyValueHeads: Int
    public let intermediateSize: Int, maxPositions: Int, normEpsilon: Double
    public let headDim: Int
    /// GPT-2: attention scores divided by √(head size) (`scale_attn_weights`).
    public let scalesAttention: Bool
    /// Llama: the rotary base (`rope_theta`); whether the head shares the embedding's weights.
    public let ropeTheta: Double
    /// Llama 3.1's rotary frequencies for a longer context (`rope_type: llama3`), if set.
    public let ropeScaling: RopeScaling?
    public let tiesEmbeddings: Bool
    /// The end-of-sequence tokens (`eos_token_id`, one id or a list): where `generate` stops.
    public var eosTokenIDs: [Int] { (json["eos_token_id"] as? Int).map { [$0] } ?? (json["eos_token_id"] as? [Int]) ?? [] }
    /// The file as read, written back by `savePretrained` (with `torch_dtype` float32).
    public let json: [String: Any]

    public init(json: [String: Any], path: String) throws {
        func int(_ key: String) throws -> Int {
            guard let v = json[key] as? Int else { throw DataError.file(path, "has no integer '\(key)'") }
            return v
        }
        func refuse(_ key: String, unless ok: (Any) -> Bool) throws {
            if let v = json[key], !(v is NSNull), !ok(v) { throw DataError.file(path, "sets '\(key)' to \(v), which Ember does not implement") }
        }
        guard let type = json["model_type"] as? String else { throw DataError.file(path, "has no model_type") }
        guard let family = Family(rawValue: type) else {
            throw DataError.file(path, "has model_type '\(type)'; Ember reads gpt2 and llama")
        }
        self.family = family
        self.json = json
        switch family {
        case .gpt2:
            (vocabularySize, hiddenSize, layers, heads) = (try int("vocab_size"), try int("n_embd"), try int("n_layer"), try int("n_head"))
            keyValueHeads = heads
            intermediateSize = (json["n_inner"] as? Int) ?? 4 * hiddenSize
            maxPositions = (json["n_positions"] as? Int) ?? (json["n_ctx"] as? Int) ?? 1024  // older files say n_ctx
            normEpsilon = (json["layer_norm_epsilon"] as? Double) ?? 1e-5
            scalesAttention = (json["scale_attn_weights"] as? Bool) ?? true
            (ropeTheta, ropeScaling, tiesEmbeddings) = (0, nil, true)
            try refuse("activation_function") { ($0 as? String) == "gelu_new" }
            try refuse("scale_attn_by_inverse_layer_idx") { ($0 as? Bool) == false }
            try refuse("reorder_and_upcast_attn") { ($0 as? Bool) == false }
            try refuse("add_cross_attention") { ($0 as? Bool) == false }
        case .llama:
            (vocabularySize, hiddenSize, layers, heads) = (try int("vocab_size"), try int("hidden_size"), try int("num_hidden_layers"), try int("num_attention_heads"))
            keyValueHeads = (json["num_key_value_heads"] as? Int) ?? heads
            intermediateSize = try int("intermediate_size")
            maxPositions = (json["max_position_embeddings"] as? Int) ?? 2048
            normEpsilon = (json["rms_norm_eps"] as? Double) ?? 1e-6
            // transformers 5 keeps the base under rope_parameters; older files at the top level.
            let rope = json["rope_parameters"] as? [String: Any]
            ropeTheta = (rope?["rope_theta"] as? Double) ?? (json["rope_theta"] as? Double) ?? 10000
            // Scaling under rope_parameters (transformers 5) or rope_scaling (older files).
            let scalings = [rope, json["rope_scaling"] as? [String: Any]].compactMap { $0 }
            ropeScaling = try scalings.lazy.compactMap { try RopeScaling($0, path: path) }.first
            tiesEmbeddings = (json["tie_word_embeddings"] as? Bool) ?? false
            scalesAttention = true
            try refuse("hidden_act") { ($0 as? String) == "silu" }
            try refuse("attention_bias") { ($0 as? Bool) == false }
            try refuse("mlp_bias") { ($0 as? Bool) == false }
            try refuse("sliding_window") { _ in false }
            try refuse("pretraining_tp") { ($0 as? Int) == 1 }
        }
        headDim = (json["head_dim"] as? Int) ?? hiddenSize / heads
        guard heads > 0, hiddenSize % heads == 0 || json["head_dim"] != nil, heads % max(keyValueHeads, 1) == 0 else {
            throw DataError.file(path, "has \(heads) heads, \(keyValueHeads) key/value heads and width \(hiddenSize), which do not divide")
        }
    }

    /// Reads `DIR/config.json`.
    public static func load(_ directory: String) throws -> PretrainedConfig {
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.file(path, "no such file (a Hugging Face model directory has one)") }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw DataError.file(path, "is not a JSON object") }
        return try PretrainedConfig(json: json, path: path)
    }
}

/// Llama 3.1's rotary scaling (`rope_type: llama3`, as `transformers`' `_compute_llama3_parameters`):
/// frequencies whose wavelength exceeds `originalMaxPositions / lowFreqFactor` are divided by
/// `factor`, those below `originalMaxPositions / highFreqFactor` kept, and those between blended.
public struct RopeScaling: Equatable, Sendable {
    public let factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int

    /// nil for no scaling (`default`); another kind of scaling is refused by name.
    init?(_ rope: [String: Any]?, path: String) throws {
        let kind = rope?["rope_type"] as? String ?? rope?["type"] as? String ?? "default"
        guard kind != "default" else { return nil }
        guard kind == "llama3", let rope else {
            throw DataError.file(path, "sets rope scaling of type '\(kind)', which Ember does not implement (it implements llama3's)")
        }
        func number(_ key: String) throws -> Double {
            guard let v = rope[key] as? Double ?? (rope[key] as? Int).map(Double.init) else {
                throw DataError.file(path, "sets llama3 rope scaling without a number '\(key)'")
            }
            return v
        }
        (factor, lowFreqFactor, highFreqFactor) = (try number("factor"), try number("low_freq_factor"), try number("high_freq_factor"))
        originalMaxPositions = Int(try number("original_max_position_embeddings"))
        guard factor > 0, highFreqFactor > lowFreqFactor, lowFreqFactor > 0, originalMaxPositions > 0 else {
            throw DataError.file(path, "sets llama3 rope scaling with factors that do not order (factor \(factor), low \(lowFreqFactor), high \(highFreqFactor))")
        }
    }

    /// An inverse frequency as scaled.
    func scaled(_ inverse: Double) -> Double {
        let wavelength = 2 * Double.pi / inverse, old = Double(originalMaxPositions)
        if wavelength < old / highFreqFactor { return inverse }
        if wavelength > old / lowFreqFactor { return inverse / factor }
        let smooth = (old / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
        return (1 - smooth) * inverse / factor + smooth * inverse
    }
}
