@_spi(Checks) import Ember
import EmberDistributed
import Foundation

/// `trainer inspect` and `trainer eval`.
public enum CheckpointTools {
    /// A readable description of a checkpoint directory, run directory or safetensors file.
    public static func inspect(_ path: String) throws -> String {
        var lines: [String] = []
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw DataError.file(path, "no such file or directory") }
        if !isDir.boolValue {
            let (tensors, meta) = try Safetensors.load(path)
            lines.append("\(path): safetensors, \(tensors.count) tensors, \(tensors.values.reduce(0) { $0 + $1.count }) values")
            if !meta.isEmpty { lines.append("metadata: " + meta.keys.sorted().map { "\($0)=\(meta[$0]!)" }.joined(separator: ", ")) }
            lines += describe(tensors)
            return lines.joined(separator: "\n")
        }
        if isHuggingFaceDirectory(path) { return try describeHuggingFace(path) }
        let checkpoint = FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(Checkpoints.stateFile))
            ? try Checkpoints.load(path)
            : try Checkpoints.latestValid(runDir: path) { lines.append("warning: \($0)") }
        let s = checkpoint.state
        lines.append("checkpoint \(checkpoint.path) (checksums verified)")
        // A run by steps counts steps; its epochs are only the data's passes.
        let progress = s.config.maxSteps.map { "step \(s.globalStep) of \($0)" }
            ?? "step \(s.globalStep): " + (s.batchInEpoch > 0 ? "epoch \(s.epoch + 1) of \(s.config.epochs), \(s.batchInEpoch) batches done" : "\(s.epoch) of \(s.config.epochs) epochs done")
        lines.append("  written \(s.createdAt) (\(s.reason)) at \(progress)")
        let what = s.config.task.map { "task \($0)" } ?? "model \(s.config.model)"
        let data = s.config.task == nil ? ", data \(s.config.data)" : ""
        let precision = s.config.precision == "fp32" ? "" : ", precision \(s.config.precision)"
            + (s.config.reduceDtype == "fp32" ? "" : " (gradients reduced in \(s.config.reduceDtype))")
        lines.append("  world size \(s.worldSize), batch \(s.config.batchSize) per rank, \(what), optimizer \(s.config.optimizer)\(data)\(precision)")
        if let last = s.history.last {
            lines.append(String(format: "  last epoch: train loss %.4f%@", last.trainLoss, last.valAccuracy.map { String(format: ", val accuracy %.4f", $0) } ?? ""))
        }
        lines.append("model tensors:")
        lines += describe(checkpoint.model)
        lines.append("optimizer state: \(checkpoint.optimizer.count) tensors, groups \(s.optimizerGroups.map { $0["lr"].map { String(format: "lr=%.4g", $0) } ?? "" })")
        return lines.joined(separator: "\n")
    }

    /// A directory `transformers` wrote (config.json and weights) rather than a run.
    static func isHuggingFaceDirectory(_ path: String) -> Bool {
        let has = { holds(path, $0) }
        return has("config.json") && (has("model.safetensors") || has("model.safetensors.index.json")) && !has("checkpoints") && !has(Checkpoints.stateFile)
    }

    private static func holds(_ directory: String, _ name: String) -> Bool {
        FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(name))
    }

    /// A Hugging Face directory: what its config makes, its tokenizer, its tensors.
    static func describeHuggingFace(_ path: String) throws -> String {
        let c = try PretrainedConfig.load(path)
        // The headers say the names, dtypes and shapes: nothing is decoded.
        let weights = try PretrainedWeights.files(path).reduce(into: [:]) { all, file in all.merge(file.layout) { a, _ in a } }
        let has = { holds(path, $0) }
        let files = has("tokenizer.json") ? "tokenizer.json" : has("vocab.json") && has("merges.txt") ? "vocab.json + merges.txt" : nil
        let tokenizer: String
        do {
            let t = try BPETokenizer.fromPretrained(path)
            tokenizer = "\(files ?? "?") (\(t.kind), \(t.vocabularySize) tokens)"
        } catch {
            tokenizer = files.map { "\($0), which Ember cannot reproduce: \(error) (train on token ids)" } ?? "none (train on token ids)"
        }
        let rope = c.family != .llama ? "" : ", rotary base \(c.ropeTheta)" + (c.ropeScaling.map {
            " scaled as Llama 3.1's (factor \($0.factor), frequency factors \($0.lowFreqFactor) to \($0.highFreqFactor), from \($0.originalMaxPositions) positions)"
        } ?? "")
        var lines = ["\(path): Hugging Face \(c.family.rawValue) model, \(weights.values.reduce(0) { $0 + $1.shape.reduce(1, *) }) parameters in \(weights.count) tensors",
                     "  \(c.layers) layers, hidden \(c.hiddenSize), \(c.heads) heads (\(c.keyValueHeads) for keys and values), MLP \(c.intermediateSize), vocabulary \(c.vocabularySize), \(c.maxPositions) positions\(rope)",
                     "  tokenizer: \(tokenizer)", "tensors:"]
        lines += describe(layout: weights)
        return lines.joined(separator: "\n")
    }

    static func describe(_ tensors: [String: Tensor]) -> [String] { describe(layout: tensors.mapValues { ($0.dtype, $0.shape) }) }

    static func describe(layout: [String: (dtype: DType, shape: [Int])]) -> [String] {
        layout.keys.sorted().map { k in "  \(k)  \(layout[k]!.dtype.safetensorsName) \(layout[k]!.shape)" }
    }

    /// What `--checkpoint PATH` names: a checkpoint directory, or a run directory's latest good
    /// checkpoint (warning about the ones skipped).
    static func checkpoint(_ path: String) throws -> LoadedCheckpoint {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw ConfigError("--checkpoint \(path): no such checkpoint or run directory")
        }
        if isHuggingFaceDirectory(path) {
            throw ConfigError("--checkpoint \(path) is a Hugging Face model directory, not a run: give it as --pretrained \(path)")
        }
        return FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(Checkpoints.stateFile))
            ? try Checkpoints.load(path)
            : try Checkpoints.latestValid(runDir: path) { Console.writeLine("warning: \($0)", error: true) }
    }

    /// Loss and accuracy of a checkpoint's model on a split of its data (or of `data`).
    /// `split`: train, val, test or all; nil is the held-out split (test, else val).
    public static func evaluate(checkpoint path: String, data: String?, split: String?, dataDirectory: String? = nil) throws -> String {
        let checkpoint = try checkpoint(path)
        var config = checkpoint.state.config
        if let task = config.task {
            throw ConfigError("checkpoint \(checkpoint.path) is of the task \(task), trained by a program of its own: evaluate it with that program (`PROGRAM eval --checkpoint \(path)`) or `Trainer.evaluate`")
        }
        if let data { config.data = data }
        if config.model.isLanguageModel {
            // Another text is read with the run's own tokenizer (its characters, for a char-level run).
            let own = try data == nil || config.pretrained != nil ? nil : checkpoint.state.taskState.map(SavedTokenizer.decode)
            return try evaluateLanguageModel(checkpoint, config: config, split: split, dataDirectory: dataDirectory, tokenizer: own)
        }
        let prepared = try DataPreparation.prepare(config, dataDirectory: dataDirectory)
        let model = try ModelFactory.make(config, sampleShape: prepared.sampleShape, outputs: prepared.outputs, generator: Generator(seed: 0))
        do { try model.loadStateDict(checkpoint.model) } catch {
            throw ConfigError("checkpoint \(checkpoint.path) does not fit a \(config.model) model for --data \(config.data): \(error)")
        }
        model.eval()
        var lines: [String] = []
        for (name, d) in try chosen([("train", prepared.train), ("val", prepared.val), ("test", prepared.test)], split) {
            guard let d else { lines.append("\(name): (no such split)"); continue }
            var lossSum = 0.0, correct = 0.0
            noGrad {
                for (x, y) in DataLoader(d, batchSize: 256) {
                    let out = model(x)
                    if prepared.task == .classification {
                        lossSum += Losses.crossEntropy(out, y).doubleItem() * Double(x.shape[0])
                        correct += out.argmax(dim: 1).eq(y).sum().doubleItem()
                    } else {
                        lossSum += Losses.mse(out, y).doubleItem() * Double(x.shape[0])
                    }
                }
            }
            let n = Double(d.count)
            lines.append(prepared.task == .classification
                         ? String(format: "%@: %d samples, loss %.4f, accuracy %.4f", name, d.count, lossSum / n, correct / n)
                         : String(format: "%@: %d samples, loss %.4f", name, d.count, lossSum / n))
        }
        return lines.joined(separator: "\n")
    }

    /// A Hugging Face model directory as it is (before any fine-tuning: the baseline a run is
    /// measured against) on a text, split as `trainer train --pretrained DIR --data` splits it.
    public static func evaluate(pretrained directory: String, data: String, split: String?, dataDirectory: String? = nil) throws -> String {
        var config = TrainerConfig(model: .pretrained)
        (config.pretrained, config.data) = (directory, data)
        try config.validate()
        return try evaluateLanguageModel(nil, config: config, split: split, dataDirectory: dataDirectory)
    }

    /// The splits to evaluate: every one for "all" (absent ones say so), the named one (refused,
    /// naming those there are, when the data has none), or without a name the held-out one: test,
    /// else val (a language model's preset keeps no test split), else train.
    static func chosen<D>(_ splits: [(String, D?)], _ split: String?) throws -> [(String, D?)] {
        if split == "all" { return splits }
        let present = splits.filter { $0.1 != nil }
        if let split {
            guard let found = present.first(where: { $0.0 == split }) else {
                throw ConfigError("--split \(split): this run's data has no \(split) split (it has \(present.map(\.0).joined(separator: ", ")))")
            }
            return [found]
        }
        return ["test", "val", "train"].lazy.compactMap { name in present.first { $0.0 == name } }.first.map { [$0] } ?? []
    }

    /// A language model's loss per token and perplexity on each split, every next-token
    /// prediction counted once (covering windows), with the run's own tokenizer.
    static func evaluateLanguageModel(_ checkpoint: LoadedCheckpoint?, config: TrainerConfig, split: String?, dataDirectory: String?,
                                      tokenizer: Tokenizer? = nil) throws -> String {
        let text = try PreparedText(config, dataDirectory: dataDirectory, tokenizer: tokenizer)
        let task = LanguageModelTask(config: config, text: text)
        if let state = checkpoint?.state.taskState { try task.restore(checkpointState: state) }
        let model = try LanguageModelFactory.make(config, vocabularySize: text.tokenizer.vocabularySize,
                                              generators: ModelGenerators(weights: Generator(seed: 0), dropout: Generator(seed: 0)), dropout: 0)
        if let checkpoint {
            do { try model.loadStateDict(checkpoint.model) } catch {
                throw ConfigError("checkpoint \(checkpoint.path) does not fit a \(config.model) model: \(error)")
            }
        }
        model.eval()
        var lines: [String] = []
        for (name, w) in try chosen([("train", Optional(text.train)), ("val", text.val), ("test", text.test)], split) {
            guard let w else { lines.append("\(name): (no such split)"); continue }
            let windows = try TokenWindows(ids: w.tokens, blockSize: config.blockSize, covering: true)
            var log = MetricLog(task.metrics)
            var lossSum = 0.0, tokens = 0.0
            noGrad {
                for start in stride(from: 0, to: windows.count, by: 64) {
                    let indices = Array(start..<min(start + 64, windows.count))
                    let (input, target) = windows.batch(indices)
                    let counted = Double(windows.predictions(in: indices))
                    lossSum += task.evaluationStep(model: model, batch: (input: input, target: target), log: &log).doubleItem() * counted
                    tokens += counted
                }
            }
            let loss = lossSum / max(tokens, 1)
            lines.append(String(format: "%@: %.0f tokens, loss %.4f per token, perplexity %.2f", name, tokens, loss, exp(loss)))
        }
        return lines.joined(separator: "\n")
    }
}
