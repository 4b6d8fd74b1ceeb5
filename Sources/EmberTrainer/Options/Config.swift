import Ember
import Foundation

/// Everything a training run is configured by. Defaults, then a JSON file (`--config`), then
/// command-line flags; the merged result is validated once and written to the run directory.
public struct TrainerConfig: Codable, Equatable, Sendable {
    public var model: ModelName = .cnn
    /// Layers of a `model: "sequential"` network, e.g. `[{"type": "linear", "out": 64}, {"type": "relu"}]`.
    public var layers: [LayerSpec]? = nil
    public var data = "mnist5k"
    /// The target column of `csv:` data (negative counts from the end).
    public var labelColumn = -1
    public var standardize = false
    public var numClasses: Int? = nil
    public var valFraction = 0.1
    public var testFraction = 0.1
    public var syntheticSamples = 2048
    // Defaults reach ≥ 96% test accuracy with the cnn preset on the bundled data with 4 ranks.
    public var epochs = 20
    public var batchSize = 32
    public var optimizer: OptimizerName = .sgd
    public var lr = 0.05
    public var momentum: Double? = nil
    public var beta1: Double? = nil
    public var beta2: Double? = nil
    public var weightDecay = 5e-4
    public var schedule: ScheduleName = .cosine
    public var warmupEpochs = 0
    public var gradAccumulation = 1
    public var clipNorm: Double? = nil
    public var clipValue: Double? = nil
    public var patience: Int? = nil
    public var minDelta = 0.0
    /// The metric early stopping, the plateau schedule and `keepBest` watch (`val_loss`,
    /// `val_accuracy`, `train_loss`, or `val_<name>` of a task's metric).
    public var monitor = "val_loss"
    /// Also keep the checkpoints of the `keepBest` best epochs by `monitor` (0: none).
    public var keepBest = 0
    public var seed: UInt64 = 0
    public var runDir: String? = nil
    public var resume: String? = nil
    public var checkpointInterval = 1
    public var keepLast = 3
    public var logInterval = 20
    public var logLevel = "info"
    public var localRanks = 1
    public var threads = 0
    public var collectiveTimeout = 300.0
    public var bucketKB = 1024
    /// Overlap gradient allreduces with backward; nil decides from the launch (see
    /// `LaunchEnvironment.overlapPaysOff`).
    public var overlap: Bool? = nil
    /// Shard the optimizer step over the ranks (`DataParallel(shardOptimizerStep:)`); nil
    /// decides from the model's size (`DataParallel.shardingPaysOff`).
    public var shardOptimizer: Bool? = nil
    public var dropout = 0.0
    /// Write a timeline of training here (`--trace DIR`; nil: none).
    public var trace: String? = nil
    /// Batches traced, from the first of the run.
    public var traceSteps = 50
    /// Train for this many optimizer steps instead of `epochs`, validating every `evalInterval`
    /// steps (nil: by epochs).
    public var maxSteps: Int? = nil
    public var evalInterval = 250
    /// With `maxSteps`: linear warm-up over these steps, then the schedule per step.
    public var warmupSteps = 0
    /// With `maxSteps` and `schedule: cosine`: the rate the cosine ends at (nil: lr / 10).
    public var minLr: Double? = nil
    // The language-model presets (`--model gpt`): nanoGPT's names.
    public var nLayer = 4
    public var nHead = 4
    public var nEmbd = 128
    public var blockSize = 64
    /// The LSTM's hidden size (`--model lstm`).
    public var hiddenSize = 256
    /// Share the token embedding with the output layer (nil: yes, as nanoGPT).
    public var tieEmbeddings: Bool? = nil
    /// The same result on any number of ranks (`--deterministic`): fixed micro-batches of the
    /// global batch, gradients added in micro-batch order (docs/distributed.md).
    public var deterministic = false
    /// With `deterministic`: samples per optimizer step over all ranks.
    public var globalBatchSize: Int? = nil
    /// With `deterministic`: samples per micro-batch (nil: the global batch / 12 when that
    /// divides it, else / 4, / 2, or 1).
    public var microBatchSize: Int? = nil
    /// The language models' tokens: `char` (the corpus's characters) or `byte` (256 values).
    public var tokenizer = "char"
    /// The task a program of one's own trains (`TrainingTask.name`, set by `Trainer.fit`); nil
    /// for the presets. Checkpoints, `config.json` and `summary.json` record it.
    public var task: String? = nil
    /// A Hugging Face model directory to fine-tune (`--pretrained DIR`; sets `model` to `pretrained`).
    public var pretrained: String? = nil
    /// `bf16`: matrix products in bfloat16 with float32 accumulation (autocast); `fp32` by default.
    public var precision = "fp32"
    /// `bf16`: gradients travel between the ranks in bfloat16 (half the bytes), summed in float32
    /// on arrival; `fp32` by default.
    public var reduceDtype = "fp32"

    public init() {}

    /// The defaults for `model`: a language model's are nanoGPT's CPU recipe for character-level
    /// Shakespeare (AdamW 1e-3, β2 0.99, weight decay 0.1 on matrices, 100 warm-up steps then
    /// cosine to 1e-4 at step 2000, clip 1.0, batch 12, validation every 250 steps on the last
    /// 10% of the bundled corpus); every other model's are `init()`'s.
    public init(model: ModelName) {
        self.init()
        self.model = model
        guard model.isLanguageModel else { return }
        data = "shakespeare"
        maxSteps = 2000
        evalInterval = 250
        warmupSteps = 100
        minLr = 1e-4
        batchSize = 12
        optimizer = .adamw
        lr = 1e-3
        beta2 = 0.99
        weightDecay = 0.1
        clipNorm = 1.0
        schedule = .cosine
        valFraction = 0.1
        testFraction = 0
        logInterval = 50
        if model == .lstm { nLayer = 1 }
        if model == .pretrained {
            // nanoGPT's fine-tuning recipe, scaled to a short run: a small constant-ish rate.
            (maxSteps, evalInterval, warmupSteps, lr, minLr) = (200, 50, 20, 3e-5, 3e-6)
        }
    }

    /// A preset's warm-up that would not end before a shorter run's last step (`--max-steps 30`
    /// under gpt's 100) shrinks to the same share of the run as in the preset (100 of 2000: 1 of
    /// 30), as a warm-up the user did not choose should not refuse a quick try.
    mutating func fitWarmup(of preset: TrainerConfig) {
        guard let steps = maxSteps, let presetSteps = preset.maxSteps, presetSteps > 0,
              warmupSteps == preset.warmupSteps, warmupSteps >= steps else { return }
        warmupSteps = preset.warmupSteps * steps / presetSteps
    }

    /// The presets' names (`ModelName.presets`).
    public static var models: [String] { ModelName.presets.map(\.rawValue) }
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error"]

    /// Keys a config file may use: exactly the property names.
    static let knownKeys: Set<String> = {
        let data = try! JSONEncoder().encode(TrainerConfig.withAllOptionalsSet())
        return Set((try! JSONSerialization.jsonObject(with: data) as! [String: Any]).keys)
    }()

    private static func withAllOptionalsSet() -> TrainerConfig {
        var c = TrainerConfig()
        c.layers = []
        c.pretrained = ""; c.numClasses = 1; c.momentum = 0; c.clipNorm = 1; c.clipValue = 1; c.patience = 1; c.beta1 = 0.9; c.beta2 = 0.999
        c.runDir = ""; c.resume = ""; c.overlap = false; c.shardOptimizer = false; c.trace = ""
        c.maxSteps = 1; c.minLr = 0; c.tieEmbeddings = true; c.globalBatchSize = 1; c.microBatchSize = 1
        return c
    }

    /// Reads a JSON config file; unknown keys are errors (a typo should not be silently ignored).
    public static func load(_ path: String, base: TrainerConfig = TrainerConfig()) throws -> TrainerConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("config file \(path) does not exist or cannot be read")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConfigError("config file \(path) is not a JSON object")
        }
        let unknown = Set(object.keys).subtracting(knownKeys).sorted()
        if !unknown.isEmpty {
            throw ConfigError("config file \(path): unknown option\(unknown.count > 1 ? "s" : "") \(unknown.map { "'\($0)'" }.joined(separator: ", ")) (known: \(knownKeys.sorted().joined(separator: ", ")))")
        }
        // Start from the defaults, then overlay what the file says.
        var merged = try JSONSerialization.jsonObject(with: JSONEncoder().encode(base)) as! [String: Any]
        for (k, v) in object { merged[k] = v }
        do {
            return try JSONDecoder().decode(TrainerConfig.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let error as DecodingError {
            throw ConfigError("config file \(path): \(describe(error, object))")
        }
    }

    /// A decoding error as the option it concerns and what that option takes.
    static func describe(_ error: DecodingError, _ object: [String: Any]) -> String {
        let context: DecodingError.Context
        var missing: String? = nil
        switch error {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): context = c
        case .keyNotFound(let key, let c): context = c; missing = key.stringValue
        @unknown default: return "\(error)"
        }
        var path = ""
        for key in context.codingPath {
            if let index = key.intValue { path += "[\(index)]" } else { path += path.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
        if let missing { return "'\(path.isEmpty ? missing : path + "." + missing)' is missing" }
        // A number that is not whole where a whole number belongs leaves no coding path here;
        // find the top-level option whose value does not fit its type.
        let key = context.codingPath.first?.stringValue ?? object.keys.sorted().first { !fitsType($0, object[$0]!) } ?? ""
        guard !key.isEmpty else { return "\(context.debugDescription)" }
        let expected = expectedTypes[key].map { " must be \($0)" } ?? " has the wrong type"
        let shown = path.isEmpty ? key : path
        return "option '\(shown)'\(expected) (got \(json(object[key])))"
    }

    /// What each option takes, in words (from `TrainerOption.all`).
    static let expectedTypes: [String: String] = Dictionary(uniqueKeysWithValues: TrainerOption.all.map { ($0.key, $0.expected) })
        .merging(["layers": "a list of layers"]) { a, _ in a }

    /// Whether `value` decodes as option `key`'s type.
    static func fitsType(_ key: String, _ value: Any) -> Bool {
        var probe = try! JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainerConfig())) as! [String: Any]
        probe[key] = value
        guard let data = try? JSONSerialization.data(withJSONObject: probe) else { return false }
        return (try? JSONDecoder().decode(TrainerConfig.self, from: data)) != nil
    }

    private static func json(_ value: Any?) -> String {
        guard let value else { return "nothing" }
        if value is NSNull { return "null" }
        if let data = try? JSONSerialization.data(withJSONObject: [value], options: [.fragmentsAllowed]),
           let text = String(data: data, encoding: .utf8) {
            return String(text.dropFirst().dropLast())
        }
        return "\(value)"
    }

    /// Checks every option and combination; the message names the options involved. With
    /// `forTask`, the options a task of one's own replaces (model, layers, data) are not checked.
    public func validate(forTask: Bool = false) throws {
        func fail(_ message: String) throws -> Never { throw ConfigError(message) }
        if !forTask {
            if model == "sequential" && (layers ?? []).isEmpty { try fail("--model sequential needs a 'layers' list in the config file") }
            if model != "sequential" && layers != nil { try fail("'layers' in the config only applies to --model sequential (got --model \(model))") }
            _ = try DataSpec.parse(data)
        }
        // Each option's own range (TrainerOption.all), then the combinations.
        for option in TrainerOption.all where !(forTask && ["model", "data"].contains(option.key)) {
            if let problem = option.problem(self) { try fail(problem) }
        }
        if momentum != nil && ![.sgd, .rmsprop].contains(optimizer) { try fail("--momentum applies to --optimizer sgd or rmsprop, not \(optimizer)") }
        for (flag, beta) in [("--beta1", beta1), ("--beta2", beta2)] where beta != nil && ![.adam, .adamw].contains(optimizer) {
            try fail("\(flag) applies to --optimizer adam or adamw, not \(optimizer)")
        }
        if resume == "auto" && runDir == nil { try fail("--resume auto needs --run-dir (the run to continue or start)") }
        if warmupEpochs < 0 || warmupEpochs >= epochs { try fail("--warmup-epochs must be in 0..<--epochs (got \(warmupEpochs) with --epochs \(epochs))") }
        if warmupEpochs > 0 && [.onecycle, .plateau].contains(schedule) {
            try fail("--warmup-epochs cannot be combined with --schedule \(schedule) (one-cycle has its own warm-up; plateau reacts to validation loss)")
        }
        if valFraction + testFraction >= 0.9 { try fail("--val-fraction \(valFraction) and --test-fraction \(testFraction) leave too little training data") }
        if patience != nil && valFraction == 0 && !forTask { try fail("early stopping (--patience) needs a validation split (--val-fraction > 0)") }
        if schedule == .plateau && valFraction == 0 && !forTask { try fail("--schedule plateau needs a validation split (--val-fraction > 0)") }
        if monitor.hasPrefix("val_") && valFraction == 0 && (patience != nil || keepBest > 0) && !forTask {
            try fail("--monitor \(monitor) needs a validation split (--val-fraction > 0)")
        }
        for (i, spec) in (layers ?? []).enumerated() { try spec.validate(index: i) }
        try validateDeterministic()
        if reduceDtype == "bf16" && shardOptimizer == true {
            try fail("--reduce-dtype bf16 cannot be combined with --shard-optimizer (a sharded step reduce-scatters in float32); leave sharding off")
        }
        // Counts beyond any real run overflow the arithmetic of epochs and schedules.
        for (flag, value) in [("--max-steps", maxSteps ?? 0), ("--epochs", epochs), ("--eval-interval", evalInterval)] where value > Self.largestCount {
            try fail("\(flag) \(value) is beyond what a run can do (at most \(Self.largestCount))")
        }
        if batchSize > Self.largestBatch { try fail("--batch-size \(batchSize) is beyond what a step can hold (at most \(Self.largestBatch))") }
        if maxSteps == nil && (warmupSteps > 0 || minLr != nil) { try fail("--warmup-steps and --min-lr apply to training by steps (--max-steps N)") }
        if let maxSteps, warmupSteps >= maxSteps {
            let preset = warmupSteps == TrainerConfig(model: model).warmupSteps ? ", the \(model.rawValue) preset's default: give a smaller --warmup-steps" : ""
            try fail("--warmup-steps must be below --max-steps (got \(warmupSteps) with --max-steps \(maxSteps)\(preset))")
        }
        if let minLr, minLr > lr { try fail("--min-lr \(minLr) is above --lr \(lr)") }
        if maxSteps != nil && warmupEpochs > 0 { try fail("--warmup-epochs applies to training by epochs; with --max-steps use --warmup-steps") }
        if !forTask { try validateModelAndData() }
    }

    /// `--deterministic` and the options that belong to it (or cannot go with it).
    private func validateDeterministic() throws {
        guard deterministic else {
            if globalBatchSize != nil || microBatchSize != nil { throw ConfigError("--global-batch-size and --micro-batch-size apply with --deterministic") }
            return
        }
        guard let g = globalBatchSize else { throw ConfigError("--deterministic needs --global-batch-size N (the samples of one step over all ranks, whatever their number)") }
        if let m = microBatchSize, g % m != 0 { throw ConfigError("--micro-batch-size \(m) must divide --global-batch-size \(g)") }
        if gradAccumulation != 1 { throw ConfigError("--grad-accumulation does not apply with --deterministic (the micro-batches are the accumulation)") }
        if shardOptimizer == true { throw ConfigError("--shard-optimizer does not apply with --deterministic (every rank takes the whole step)") }
        if reduceDtype == "bf16" { throw ConfigError("--reduce-dtype bf16 does not apply with --deterministic (its gradients are added in a fixed order in float32)") }
        if threads > 1 { throw ConfigError("--threads \(threads): --deterministic runs one BLAS thread per rank (products split over threads may round differently)") }
    }

    /// The model against the data it trains on, and whether its memory fits.
    private func validateModelAndData() throws {
        let spec = try? DataSpec.parse(data)
        if case .tokens? = spec, pretrained == nil {
            throw ConfigError("--data \(data) holds a pretrained tokenizer's ids: train it with --pretrained DIR (the model they belong to)")
        }
        let text = spec?.isText ?? false
        if model.isLanguageModel && !text { throw ConfigError("--model \(model) trains on text: use --data shakespeare (bundled) or text:PATH, not \(data)") }
        if !model.isLanguageModel && text { throw ConfigError("--data \(data) is text, which only the language models (--model \(ModelName.languageModels.map(\.rawValue).joined(separator: ", "))) train on") }
        if model == .pretrained && pretrained == nil { throw ConfigError("--model pretrained is chosen by --pretrained DIR (a Hugging Face model directory)") }
        if model == .gpt && nEmbd % nHead != 0 { throw ConfigError("--n-embd \(nEmbd) must be divisible by --n-head \(nHead)") }
        try MemoryEstimate.check(self)
    }

    /// The most steps, epochs or steps between validations a run may ask for (10^12).
    public static let largestCount = 1_000_000_000_000
    /// The largest batch a step may ask for.
    public static let largestBatch = 1 << 24

    /// The config as pretty JSON (what `config.json` in the run directory holds).
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try! encoder.encode(self)
    }
}

/// A layer of a `sequential` model in a config file.
public struct LayerSpec: Codable, Equatable, Sendable {
    public var type: String
    public var out: Int? = nil
    public var kernel: Int? = nil
    public var stride: Int? = nil
    public var padding: Int? = nil
    public var p: Double? = nil

    /// Range checks of the values a spec gives (what each layer type needs is checked when the
    /// model is built, against the shapes).
    func validate(index i: Int) throws {
        func check(_ value: Int?, _ key: String, _ range: ClosedRange<Int>) throws {
            if let value, !range.contains(value) {
                throw ConfigError("layers[\(i)] (\(type)): '\(key)' must be between \(range.lowerBound) and \(range.upperBound) (got \(value))")
            }
        }
        try check(out, "out", 1...(1 << 20))
        try check(kernel, "kernel", 1...1024)
        try check(stride, "stride", 1...1024)
        try check(padding, "padding", 0...1024)
        if let p, !(p >= 0 && p < 1) { throw ConfigError("layers[\(i)] (\(type)): 'p' must be in [0, 1) (got \(p))") }
    }
}

/// A user mistake in options or config; printed as `error: <message>` with exit status 2.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where training data comes from.
public enum DataSpec: Equatable, Sendable {
    case mnist5k
    case synthetic
    case csv(String)
    case idx(String)
    case npy(String)
    /// The bundled corpus (for the language models).
    case shakespeare
    /// A text file, plain or gzipped (for the language models).
    case text(String)
    /// Token ids already made by a pretrained model's tokenizer: a flat file of little-endian
    /// uint16 (uint32 past 65,536 tokens), as nanoGPT's prepare.py and `trainer tokenize` write.
    case tokens(String)

    var isText: Bool {
        switch self {
        case .shakespeare, .text, .tokens: return true
        default: return false
        }
    }

    public static func parse(_ text: String) throws -> DataSpec {
        if text == "mnist5k" { return .mnist5k }
        if text == "synthetic" { return .synthetic }
        if text == "shakespeare" { return .shakespeare }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        if parts.count == 2 && !parts[1].isEmpty {
            switch parts[0] {
            case "csv": return .csv(parts[1])
            case "idx": return .idx(parts[1])
            case "npy": return .npy(parts[1])
            case "text": return .text(parts[1])
            case "tokens": return .tokens(parts[1])
            default: break
            }
        }
        throw ConfigError("--data \(text) is not understood; use mnist5k, synthetic, csv:PATH, idx:DIR, npy:DIR, shakespeare, text:PATH or tokens:PATH")
    }
}
