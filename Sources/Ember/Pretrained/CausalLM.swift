import Foundation

/// A pretrained causal language model from a Hugging Face directory (`config.json`,
/// `model.safetensors` or shards with `model.safetensors.index.json`): GPT-2's family or
/// Llama's. `model(tokens)` maps int64 `[batch, time]` to float32 logits `[batch, time, vocab]`;
/// `savePretrained` writes a directory `transformers` loads. Its parameters are ordinary Ember
/// parameters under the checkpoint's own names, so it trains like any module.
public final class CausalLM: Module {
    public let config: PretrainedConfig
    let transformer: GPT2Model?
    let model: LlamaModel?
    let lmHead: Linear?

    /// A model of `config` with its weights drawn from `generator` (`fromPretrained` draws
    /// nothing: the directory's weights replace them).
    public init(config: PretrainedConfig, generator: Generator = .default) {
        self.config = config
        switch config.family {
        case .gpt2: (transformer, model, lmHead) = (GPT2Model(config, generator: generator), nil, nil)
        case .llama:
            let head = config.tiesEmbeddings ? nil : Linear(inFeatures: config.hiddenSize, outFeatures: config.vocabularySize, bias: false,
                                                             generator: generator)
            (transformer, model, lmHead) = (nil, LlamaModel(config, generator: generator), head)
        }
        super.init()
    }

    public override func forward(_ tokens: Tensor) -> Tensor {
        require(tokens.dtype == .int64 && tokens.rank == 2, "CausalLM takes int64 token ids [batch, time], got \(tokens.dtype) \(tokens.shape)")
        require(tokens.shape[1] <= config.maxPositions || config.family == .llama,
                "CausalLM: \(tokens.shape[1]) tokens exceed the model's \(config.maxPositions) positions")
        if let transformer { return transformer(tokens).matmul(transformer.wte.weight, transposeB: true) }
        let hidden = model!(tokens)
        return lmHead.map { $0(hidden) } ?? hidden.matmul(model!.embedTokens.weight, transposeB: true)
    }

    /// The model of a Hugging Face directory, its weights converted to float32. The files are
    /// mapped and each tensor decoded straight into its parameter, so loading needs the model's
    /// memory and one tensor's, not the files' and the model's twice over.
    public static func fromPretrained(_ directory: String) throws -> CausalLM {
        let config = try PretrainedConfig.load(directory)
        let lm = CausalLM(config: config, generator: .placeholder)
        var sources: [String: (file: Safetensors.Contents, key: String)] = [:]
        for file in try PretrainedWeights.files(directory) {
            for key in file.entries.keys { if let name = lm.ownKey(key) { sources[name] = (file, key) } }
        }
        let targets: [String: Tensor]
        do { targets = try lm.stateDictTargets(sources.mapValues { $0.file.shape($0.key) }) } catch {
            throw DataError.file(directory, "its weights do not fit its config.json: \(error)")
        }
        noGrad {
            for (name, target) in targets { if let s = sources[name] { target.copy_(s.file.tensor(s.key)) } }
        }
        return lm
    }

    /// The checkpoint key `key` under this model's names; nil for what it does not keep (GPT-2's
    /// causal-mask buffers, a tied head's copy, Llama's cached rotary frequencies).
    func ownKey(_ key: String) -> String? {
        if key.hasSuffix(".attn.bias") || key.hasSuffix(".attn.masked_bias") || key.hasSuffix("rotary_emb.inv_freq") { return nil }
        if key == "lm_head.weight" && lmHead == nil { return nil }
        if config.family == .gpt2 && !key.hasPrefix("transformer.") { return "transformer." + key }  // the original release's layout
        return key
    }

    /// `DIR/config.json` and `DIR/model.safetensors` (float32, `save_pretrained`'s layout).
    public func savePretrained(_ directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var json = config.json
        json[json["dtype"] != nil ? "dtype" : "torch_dtype"] = "float32"  // transformers 5 says dtype
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: (directory as NSString).appendingPathComponent("config.json"))
        try Safetensors.save(stateDict(), metadata: ["format": "pt"],
                             to: (directory as NSString).appendingPathComponent("model.safetensors"))
    }
}

/// A Hugging Face directory's weights: `model.safetensors`, or the shards an index names.
@_spi(Checks) public enum PretrainedWeights {
    /// The directory's weight files, mapped: `model.safetensors`, or the shards its index lists.
    public static func files(_ directory: String) throws -> [Safetensors.Contents] {
        let single = (directory as NSString).appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single) { return [try Safetensors.open(single)] }
        let indexPath = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw DataError.file(directory, "holds neither model.safetensors nor model.safetensors.index.json (pytorch_model.bin is not read: convert it to safetensors)")
        }
        guard let index = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let map = index["weight_map"] as? [String: String] else {
            throw DataError.file(indexPath, "has no weight_map")
        }
        return try Set(map.values).sorted().map { try Safetensors.open((directory as NSString).appendingPathComponent($0)) }
    }
}
