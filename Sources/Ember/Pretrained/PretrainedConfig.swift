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
            (ropeTheta, tiesEmbeddings) = (0, true)
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
            if let kind = rope?["rope_type"] as? String, kind != "default" {
                throw DataError.file(path, "sets rope_parameters.rope_type to '\(kind)' (rope scaling), which Ember does not implement")
            }
            tiesEmbeddings = (json["tie_word_embeddings"] as? Bool) ?? false
            scalesAttention = true
            try refuse("hidden_act") { ($0 as? String) == "silu" }
            try refuse("rope_scaling") { _ in false }
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
