import Ember
import Foundation

/// One option of `trainer train`, defined once: its config-file key (the `TrainerConfig`
/// property), its flag (the key in kebab case), how a flag's text becomes the value, the check
/// of the value, its line in `--help` and its row in docs/trainer.md. Checks that involve several
/// options stay in `TrainerConfig.validate`.
public struct TrainerOption: @unchecked Sendable {
    /// The key in a config file: `batchSize`.
    public let key: String
    /// `N`, `X`, `PATH`, … (nil for switches such as `--standardize`).
    public let valueName: String?
    /// The default, as docs/trainer.md shows it.
    public let defaultText: String
    public let help: String
    /// A flag whose negation (`--no-overlap`) sets false; nil leaves it to the launch.
    public let negatable: Bool
    /// What the value must be, in words (for a config file's type errors).
    public let expected: String
    let set: (String?, inout TrainerConfig) throws -> Void
    let problem: (TrainerConfig) -> String?

    /// `--batch-size` for `batchSize`.
    public var flag: String { "--" + TrainerOption.kebab(key) }

    /// `batchSize` → `batch-size`, `bucketKB` → `bucket-kb` (a run of capitals is one word).
    static func kebab(_ key: String) -> String {
        var out = ""
        var previous: Character?
        for ch in key {
            if ch.isUppercase && previous?.isLowercase == true { out += "-" }
            out += ch.lowercased()
            previous = ch
        }
        return out
    }

    /// An option holding a value that reads from a flag's text.
    static func value<V: OptionValue>(_ key: String, _ path: WritableKeyPath<TrainerConfig, V>, _ valueName: String, _ defaultText: String,
                                      _ help: String, check: ((V) -> String?)? = nil) -> TrainerOption {
        TrainerOption(key: key, valueName: valueName, defaultText: defaultText, help: help, negatable: false, expected: V.expected,
                      set: { text, c in c[keyPath: path] = try V.parse(text ?? "", flag: "--" + kebab(key)) },
                      problem: { c in check?(c[keyPath: path]).map { "--\(kebab(key)) \($0)" } })
    }

    /// An option that may be absent (nil: the trainer decides).
    static func optional<V: OptionValue>(_ key: String, _ path: WritableKeyPath<TrainerConfig, V?>, _ valueName: String, _ defaultText: String,
                                         _ help: String, check: ((V) -> String?)? = nil) -> TrainerOption {
        TrainerOption(key: key, valueName: valueName, defaultText: defaultText, help: help, negatable: false, expected: V.expected + " (or null)",
                      set: { text, c in c[keyPath: path] = try V.parse(text ?? "", flag: "--" + kebab(key)) },
                      problem: { c in c[keyPath: path].flatMap { check?($0) }.map { "--\(kebab(key)) \($0)" } })
    }

    /// A switch: present means true.
    static func flag(_ key: String, _ path: WritableKeyPath<TrainerConfig, Bool>, _ help: String) -> TrainerOption {
        TrainerOption(key: key, valueName: nil, defaultText: "off", help: help, negatable: false, expected: "true or false",
                      set: { _, c in c[keyPath: path] = true }, problem: { _ in nil })
    }

    /// `--name` / `--no-name`; absent leaves the choice to the trainer.
    static func negatable(_ key: String, _ path: WritableKeyPath<TrainerConfig, Bool?>, _ defaultText: String, _ help: String) -> TrainerOption {
        TrainerOption(key: key, valueName: nil, defaultText: defaultText, help: help, negatable: true, expected: "true or false (or null)",
                      set: { text, c in c[keyPath: path] = text != "no" }, problem: { _ in nil })
    }

    /// Every option, in the order `--help` and docs/trainer.md list them.
    public static let all: [TrainerOption] = [
        value("model", \.model, "NAME", "`cnn`",
              "`seednet`, `mlp`, `cnn` (LeNet-5), `resnet-small`, `sequential` with a `layers` list in the config, `gpt` (a character-level transformer language model) or `lstm` (a recurrent one), with their own defaults (docs/language-models.md), or a model registered under a name (`ModelRegistry`)",
              check: { ModelName.all.contains($0) ? nil : "\($0) is not one of \(ModelName.all.map(\.rawValue).joined(separator: ", "))" }),
        value("data", \.data, "SPEC", "`mnist5k` (`shakespeare` for gpt)", "`mnist5k` (bundled), `synthetic`, `csv:PATH`, `idx:DIR`, `npy:DIR`; for the language models `shakespeare` (bundled) or `text:PATH` (plain or gzipped; the last `--val-fraction` is validation); with `--pretrained`, `tokens:PATH` (ids from `trainer tokenize`)",
              check: { spec in (try? DataSpec.parse(spec)) == nil ? "\(spec) is not understood; use mnist5k, synthetic, csv:PATH, idx:DIR, npy:DIR, shakespeare, text:PATH or tokens:PATH" : nil }),
        value("labelColumn", \.labelColumn, "N", "-1", "the target column of `csv:` data (negative counts from the end)"),
        flag("standardize", \.standardize, "standardise features with the training split's statistics"),
        optional("numClasses", \.numClasses, "N", "largest label + 1", "declare the number of classes (labels beyond it are an error)",
                 check: { (2...DataLimits.maxClassIndex).contains($0) ? nil : "must be between 2 and \(DataLimits.maxClassIndex) (got \($0))" }),
        value("valFraction", \.valFraction, "X", "0.1", "the part held out for validation",
              check: { (0..<0.9).contains($0) ? nil : "must be in [0, 0.9) (got \($0))" }),
        value("testFraction", \.testFraction, "X", "0.1", "the part held out for the final test (a data set with its own test files keeps them)",
              check: { (0..<0.9).contains($0) ? nil : "must be in [0, 0.9) (got \($0))" }),
        value("syntheticSamples", \.syntheticSamples, "N", "2048", "size of `--data synthetic`",
              check: { (2...1_000_000).contains($0) ? nil : "must be between 2 and 1000000 (got \($0))" }),
        value("epochs", \.epochs, "N", "20", "epochs to train", check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        value("batchSize", \.batchSize, "N", "32", "per rank; the global batch (printed) is this × world size",
              check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        value("lr", \.lr, "X", "0.05", "learning rate", check: { $0 > 0 && $0.isFinite ? nil : "must be a positive number (got \($0))" }),
        value("optimizer", \.optimizer, "NAME", "`sgd`", "`sgd` (momentum 0.9 unless given), `adam`, `adamw`, `rmsprop`, `adagrad`",
              check: { OptimizerName.all.contains($0) ? nil : "\($0) is not one of \(OptimizerName.all.map(\.rawValue).joined(separator: ", "))" }),
        optional("momentum", \.momentum, "X", "", "sgd and rmsprop only", check: { (0..<1).contains($0) ? nil : "must be in [0, 1) (got \($0))" }),
        optional("beta1", \.beta1, "X", "0.9", "adam and adamw only", check: { (0..<1).contains($0) ? nil : "must be in [0, 1) (got \($0))" }),
        optional("beta2", \.beta2, "X", "0.999", "adam and adamw only", check: { (0..<1).contains($0) ? nil : "must be in [0, 1) (got \($0))" }),
        value("weightDecay", \.weightDecay, "X", "5e-4", "L2 penalty (decoupled for adamw)",
              check: { $0.isFinite && $0 >= 0 ? nil : "must be a non-negative number (got \($0))" }),
        value("schedule", \.schedule, "NAME", "`cosine`",
              "`none`, `step` (÷10 at thirds), `cosine`, `onecycle` (per step), `plateau` (halve after 2 stale epochs of `--monitor`; rank 0 decides)",
              check: { ScheduleName.all.contains($0) ? nil : "\($0) is not one of \(ScheduleName.all.map(\.rawValue).joined(separator: ", "))" }),
        value("warmupEpochs", \.warmupEpochs, "N", "0", "linear warm-up from 10% before `none`/`step`/`cosine`"),
        value("gradAccumulation", \.gradAccumulation, "N", "1", "batches per optimizer step (no allreduce until the last)",
              check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        optional("clipNorm", \.clipNorm, "X", "", "clip the global gradient norm to this",
                 check: { $0 > 0 && $0.isFinite ? nil : "must be a positive finite number (got \($0))" }),
        optional("clipValue", \.clipValue, "X", "", "clip every gradient element to ±this",
                 check: { $0 > 0 && $0.isFinite ? nil : "must be a positive finite number (got \($0))" }),
        value("dropout", \.dropout, "X", "0", "dropout in the mlp and cnn presets", check: { $0 >= 0 && $0 < 1 ? nil : "must be in [0, 1) (got \($0))" }),
        optional("patience", \.patience, "N", "", "early stopping: epochs without improvement of `--monitor` (rank 0 decides, all ranks stop)",
                 check: { $0 >= 0 ? nil : "must not be negative (got \($0))" }),
        value("minDelta", \.minDelta, "X", "0", "early stopping: the smallest change of `--monitor` that counts as improvement",
              check: { $0.isFinite && $0 >= 0 ? nil : "must be a non-negative number (got \($0))" }),
        value("monitor", \.monitor, "NAME", "`val_loss`",
              "the metric early stopping, `--schedule plateau` and `--keep-best` watch: `val_loss`, `val_accuracy`, `train_loss`, or `val_NAME` of a task's metric",
              check: { ($0.hasPrefix("val_") || $0.hasPrefix("train_")) && $0.count >= 5 ? nil
                  : "must name a logged metric such as val_loss, val_accuracy or train_loss (got \($0))" }),
        value("seed", \.seed, "N", "0", "initialisation, splits, shuffling, dropout"),
        optional("runDir", \.runDir, "DIR", "`runs/run-<time>`", "must be new (or empty) unless resuming: nothing in an existing run is overwritten; the default is made new (`-2`, `-3`, … after runs started in the same second)"),
        optional("resume", \.resume, "WHAT", "",
                 "`latest` (in `--run-dir`), `auto` (the latest checkpoint if there is one, else a fresh start: what `launch/mpirun --max-restarts` uses), a checkpoint directory, or a run directory"),
        value("checkpointInterval", \.checkpointInterval, "N", "1", "epochs between checkpoints (0: only at the end and on signals)",
              check: { $0 >= 0 ? nil : "must not be negative (got \($0)); 0 disables periodic checkpoints" }),
        value("keepLast", \.keepLast, "N", "3", "checkpoints kept", check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        value("keepBest", \.keepBest, "N", "0", "also keep the checkpoints of the N best epochs by `--monitor`",
              check: { $0 >= 0 ? nil : "must not be negative (got \($0))" }),
        value("logInterval", \.logInterval, "N", "20", "steps between progress lines when the output is not a terminal",
              check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        value("logLevel", \.logLevel, "LEVEL", "`info`", "`trace` … `error` (rank 0; other ranks print warnings and errors, prefixed)",
              check: { TrainerConfig.logLevels.contains($0) ? nil : "\($0) is not one of \(TrainerConfig.logLevels.joined(separator: ", "))" }),
        value("localRanks", \.localRanks, "N", "1", "ranks as threads of this process",
              check: { (1...256).contains($0) ? nil : "must be between 1 and 256 (got \($0))" }),
        value("threads", \.threads, "N", "cores ÷ ranks on the node",
              "product threads per rank, for every library (oneDNN, OpenBLAS; a product under 2^20 multiply-adds runs on one, `EMBER_PRODUCT_PARALLEL_FROM` moves that limit), also sharing attention's heads, GELU, softmax, layer norm and Adam (docs/cluster.md); large convolutions spread their chunks of samples over them instead (on this 2-core machine two threads train `resnet-small` 1.4–1.5× and `mlp` at batch 64 1.35× faster than one)",
              check: { $0 < 0 ? "must not be negative (got \($0)); 0 picks cores / ranks" : $0 > 1024 ? "must be at most 1024 (got \($0))" : nil }),
        value("collectiveTimeout", \.collectiveTimeout, "SECONDS", "300", "seconds a collective may wait before the job is ended (naming the ranks that did not arrive)",
              check: { $0 > 0 && $0.isFinite ? nil : "must be a positive number of seconds (got \($0))" }),
        value("bucketKB", \.bucketKB, "N", "1024", "gradient bucket size in KiB",
              check: { (1...(1 << 20)).contains($0) ? nil : "must be between 1 and 1048576 (1 GiB) (got \($0))" }),
        optional("pretrained", \.pretrained, "DIR", "",
                 "fine-tune a Hugging Face GPT-2 or Llama directory (config.json, model.safetensors, its tokenizer) on `--data`; the run also writes `RUN/hf/`, a directory transformers loads (docs/pretrained.md)"),
        optional("trace", \.trace, "DIR", "",
                 "write a timeline of the first `--trace-steps` batches (Chrome trace format: Perfetto, chrome://tracing) and print where a step's time went per rank (docs/profiling.md)"),
        value("traceSteps", \.traceSteps, "N", "50", "batches `--trace` records", check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        optional("maxSteps", \.maxSteps, "N", "(gpt: 2000)", "train for N optimizer steps instead of `--epochs`, validating every `--eval-interval` steps",
                 check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        value("evalInterval", \.evalInterval, "N", "250", "with `--max-steps`: steps between validations (and checkpoints, and metrics lines)",
              check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        value("warmupSteps", \.warmupSteps, "N", "0 (gpt: 100)", "with `--max-steps`: linear warm-up over N steps, then `--schedule` per step (a preset's that would outlast a shorter `--max-steps` shrinks to the same share of it)",
              check: { $0 >= 0 ? nil : "must not be negative (got \($0))" }),
        optional("minLr", \.minLr, "X", "lr / 10 (gpt: 1e-4)", "with `--max-steps` and `--schedule cosine`: the rate at the last step",
                 check: { $0 >= 0 && $0.isFinite ? nil : "must be a non-negative number (got \($0))" }),
        value("nLayer", \.nLayer, "N", "4 (lstm: 1)", "gpt: transformer blocks; lstm: LSTM layers", check: { (1...256).contains($0) ? nil : "must be between 1 and 256 (got \($0))" }),
        value("nHead", \.nHead, "N", "4", "gpt: attention heads per block", check: { (1...256).contains($0) ? nil : "must be between 1 and 256 (got \($0))" }),
        value("nEmbd", \.nEmbd, "N", "128", "language models: the embedding size (gpt: the width)", check: { (1...65536).contains($0) ? nil : "must be between 1 and 65536 (got \($0))" }),
        value("hiddenSize", \.hiddenSize, "N", "256", "lstm: the LSTM's hidden size", check: { (1...65536).contains($0) ? nil : "must be between 1 and 65536 (got \($0))" }),
        value("blockSize", \.blockSize, "N", "64", "language models: tokens of context per sample",
              check: { (1...65536).contains($0) ? nil : "must be between 1 and 65536 (got \($0))" }),
        value("tokenizer", \.tokenizer, "KIND", "`char`", "language models: `char` (one token per character of the corpus) or `byte` (the 256 byte values of its UTF-8)",
              check: { ["char", "byte"].contains($0) ? nil : "must be char or byte (got \($0))" }),
        value("precision", \.precision, "P", "`fp32`",
              "`bf16`: matrix products (linear, convolution, attention, recurrent) on the CPU's bfloat16 units with float32 accumulation; weights, optimizer state, reductions and losses stay float32 (docs/precision.md)",
              check: { ["fp32", "bf16"].contains($0) ? nil : "must be fp32 or bf16 (got \($0))" }),
        value("reduceDtype", \.reduceDtype, "D", "`fp32`",
              "`bf16`: gradients travel between the ranks in bfloat16, half the bytes, each arriving value added in float32 (docs/precision.md); not with a sharded optimizer step (sharding turns off unless asked for, then it is an error)",
              check: { ["fp32", "bf16"].contains($0) ? nil : "must be fp32 or bf16 (got \($0))" }),
        negatable("tieEmbeddings", \.tieEmbeddings, "on", "gpt: the output layer shares the token embedding's weights (nanoGPT's weight tying)"),
        flag("deterministic", \.deterministic,
             "the same weights, optimizer state and metrics, bitwise, on any number of ranks that divides the micro-batches (docs/distributed.md); needs `--global-batch-size`"),
        optional("globalBatchSize", \.globalBatchSize, "N", "", "with `--deterministic`: samples per step over all ranks (replaces `--batch-size`)",
                 check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        optional("microBatchSize", \.microBatchSize, "N", "global ÷ 12 (or ÷ 4, ÷ 2, 1)",
                 "with `--deterministic`: samples per micro-batch, the unit computed alike wherever it runs",
                 check: { $0 >= 1 ? nil : "must be at least 1 (got \($0))" }),
        negatable("overlap", \.overlap, "from the launch",
                  "overlap gradient allreduces with backward; by default off only when all ranks share one node and fill its cores (docs/distributed.md)"),
        negatable("shardOptimizer", \.shardOptimizer, "on with two or more ranks and ≥ 100,000 parameters",
                  "shard the optimizer step over the ranks: reduce-scatter the gradients, each rank updates its shard and keeps its optimizer state, allgather the weights (docs/distributed.md); exact up to the order of additions (bitwise with two ranks); checkpoints hold the whole optimizer state and resume sharded or not"),
    ]

    /// The option a flag names (`--batch-size`, or `--no-overlap` for a negatable one).
    static func named(_ flag: String) -> (option: TrainerOption, negated: Bool)? {
        if let o = all.first(where: { $0.flag == flag }) { return (o, false) }
        if flag.hasPrefix("--no-"), let o = all.first(where: { $0.negatable && $0.flag == "--" + flag.dropFirst(5) }) { return (o, true) }
        return nil
    }

    /// The options a command line gives: `--config FILE` (if any) and each flag with its text,
    /// in order. Negative numbers may follow a flag after a space (`--lr -1`).
    /// - Throws: `ConfigError` naming an unknown flag or a missing value.
    static func parse(_ arguments: [String], help: String = "trainer train --help") throws -> (configFile: String?, settings: [(TrainerOption, String?)]) {
        var configFile: String?
        var settings: [(TrainerOption, String?)] = []
        var i = 0
        while i < arguments.count {
            var word = arguments[i]
            var inline: String?
            if let eq = word.firstIndex(of: "="), word.hasPrefix("--") {
                inline = String(word[word.index(after: eq)...])
                word = String(word[..<eq])
            }
            func takeValue() throws -> String {
                if let inline { return inline }
                guard i + 1 < arguments.count else { throw ConfigError("\(word) needs a value") }
                i += 1
                return arguments[i]
            }
            if word == "--config" {
                configFile = try takeValue()
            } else if let (option, negated) = named(word) {
                if option.valueName == nil {
                    if inline != nil { throw ConfigError("\(word) takes no value") }
                    settings.append((option, option.negatable ? (negated ? "no" : "yes") : nil))
                } else {
                    settings.append((option, try takeValue()))
                }
            } else {
                let close = all.map(\.flag).filter { $0.hasPrefix(String(word.prefix(5))) }.prefix(3)
                throw ConfigError("unknown option '\(word)'\(close.isEmpty ? "" : " (did you mean \(close.joined(separator: ", "))?)"); see \(help)")
            }
            i += 1
        }
        return (configFile, settings)
    }

    /// Options that only `trainer`'s own models and data read: a task of one's own builds its
    /// model and data itself, so its program refuses them.
    public static let presetOnlyKeys: Set<String> = [
        "model", "data", "labelColumn", "standardize", "numClasses", "valFraction", "testFraction", "syntheticSamples",
        "dropout", "nLayer", "nHead", "nEmbd", "hiddenSize", "blockSize", "tokenizer", "tieEmbeddings", "layers",
    ]

    /// `--help`'s list of options.
    public static var helpText: String { helpText(forTask: false) }

    /// `--help`'s list of options; for a task's program, only those that apply to a task.
    public static func helpText(forTask: Bool) -> String {
        var lines = ["OPTIONS (each also a config-file key, shown in parentheses; flags override --config FILE):", "  --config FILE  a JSON file with any of the options below"]
        for o in all where !(forTask && presetOnlyKeys.contains(o.key)) {
            let name = o.negatable ? "\(o.flag), --no-\(o.flag.dropFirst(2))" : o.flag + (o.valueName.map { " " + $0 } ?? "")
            let defaultText = o.defaultText.replacingOccurrences(of: "`", with: "")
            lines.append("  \(name) (\(o.key))" + (defaultText.isEmpty ? "" : "  [default: \(defaultText)]"))
            lines.append("      " + o.help.replacingOccurrences(of: "`", with: ""))
        }
        return lines.joined(separator: "\n")
    }

    /// The options table of docs/trainer.md.
    public static var markdownTable: String {
        var lines = ["| flag (config key) | default | meaning |", "| --- | --- | --- |", "| `--config FILE` | | JSON file with any options below |"]
        for o in all {
            let name = o.negatable ? "`\(o.flag)` / `--no-\(o.flag.dropFirst(2))`" : "`\(o.flag)\(o.valueName.map { " " + $0 } ?? "")`"
            lines.append("| \(name) (`\(o.key)`) | \(o.defaultText) | \(o.help) |")
        }
        return lines.joined(separator: "\n")
    }
}

/// A value an option holds, read from a flag's text.
public protocol OptionValue {
    static var expected: String { get }
    init?(optionText: String)
}

extension OptionValue {
    static func parse(_ text: String, flag: String) throws -> Self {
        guard let v = Self(optionText: text) else { throw ConfigError("\(flag) must be \(expected) (got '\(text)')") }
        return v
    }
}

extension Int: OptionValue {
    public static var expected: String { "a whole number" }
    public init?(optionText: String) { self.init(optionText) }
}
extension UInt64: OptionValue {
    public static var expected: String { "a non-negative whole number" }
    public init?(optionText: String) { self.init(optionText) }
}
extension Double: OptionValue {
    public static var expected: String { "a number" }
    public init?(optionText: String) { self.init(optionText) }
}
extension String: OptionValue {
    public static var expected: String { "a string" }
    public init?(optionText: String) { self = optionText }
}

/// A name chosen from a fixed set (`--optimizer adam`): typed, with the set in `all`.
public protocol ChoiceName: RawRepresentable, Codable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible, OptionValue
    where RawValue == String {
    init(rawValue: String)
    static var all: [Self] { get }
}

extension ChoiceName {
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public var description: String { rawValue }
    public static var expected: String { "one of " + all.map(\.rawValue).joined(separator: ", ") }
    public init?(optionText: String) {
        guard Self.all.contains(Self(rawValue: optionText)) else { return nil }
        self.init(rawValue: optionText)
    }
    public init(from decoder: Decoder) throws { self.init(rawValue: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// `--optimizer`.
public struct OptimizerName: ChoiceName {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let sgd: Self = "sgd", adam: Self = "adam", adamw: Self = "adamw", rmsprop: Self = "rmsprop", adagrad: Self = "adagrad"
    public static let all: [Self] = [.sgd, .adam, .adamw, .rmsprop, .adagrad]
}

/// `--model`: a preset, or a model registered under a name (`ModelRegistry`).
public struct ModelName: ChoiceName {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let seednet: Self = "seednet", mlp: Self = "mlp", cnn: Self = "cnn", resnetSmall: Self = "resnet-small", sequential: Self = "sequential"
    public static let gpt: Self = "gpt", lstm: Self = "lstm"
    /// A Hugging Face model directory's (`--pretrained DIR` selects it).
    public static let pretrained: Self = "pretrained"
    public static let presets: [Self] = [.seednet, .mlp, .cnn, .resnetSmall, .sequential, .gpt, .lstm]
    /// The models that train on text (`--data shakespeare` or `text:PATH`) by steps.
    public static let languageModels: [Self] = [.gpt, .lstm, .pretrained]
    public var isLanguageModel: Bool { Self.languageModels.contains(self) }
    /// The presets and the registered models.
    public static var all: [Self] { presets + [.pretrained] + ModelRegistry.names.map(Self.init(rawValue:)) }
}

/// `--schedule`.
public struct ScheduleName: ChoiceName {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let none: Self = "none", step: Self = "step", cosine: Self = "cosine", onecycle: Self = "onecycle", plateau: Self = "plateau"
    public static let all: [Self] = [.none, .step, .cosine, .onecycle, .plateau]
}
