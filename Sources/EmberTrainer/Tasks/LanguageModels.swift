@_spi(Checks) import Ember
import Foundation

/// A GPT in the shape of nanoGPT's: token and learned position embeddings, `nLayer` pre-norm
/// transformer blocks (Ember's `TransformerEncoderLayer` with causal attention, GELU and a
/// 4× MLP, no biases), a final layer norm and a linear head, tied to the token embedding by
/// default. Weights start as nanoGPT's: normal(0, 0.02), the residual projections scaled by
/// 1/√(2·nLayer).
public final class GPT: Module {
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Embedding
    public let blocks: [TransformerEncoderLayer]
    public let norm: LayerNorm
    /// The output layer; nil when it is tied to `tokenEmbedding`.
    public let head: Linear?
    let drop: Dropout
    public let vocabularySize: Int, blockSize: Int

    public init(vocabularySize: Int, blockSize: Int, nLayer: Int, nHead: Int, nEmbd: Int, dropout: Double = 0,
                tieEmbeddings: Bool = true, generators g: ModelGenerators) {
        self.vocabularySize = vocabularySize
        self.blockSize = blockSize
        tokenEmbedding = Embedding(numEmbeddings: vocabularySize, embeddingDim: nEmbd, generator: g.weights)
        positionEmbedding = Embedding(numEmbeddings: blockSize, embeddingDim: nEmbd, generator: g.weights)
        // The layers draw their dropout masks from this rank's generator; their weights are
        // drawn again below from the weight generator.
        blocks = (0..<nLayer).map { _ in
            TransformerEncoderLayer(dModel: nEmbd, nhead: nHead, dimFeedforward: 4 * nEmbd, dropout: dropout, activation: .gelu,
                                    batchFirst: true, normFirst: true, bias: false, generator: g.dropout)
        }
        norm = LayerNorm(normalizedShape: [nEmbd], bias: false)
        head = tieEmbeddings ? nil : Linear(inFeatures: nEmbd, outFeatures: vocabularySize, bias: false, generator: g.weights)
        drop = Dropout(p: dropout, generator: g.dropout)
        super.init()
        noGrad {
            for (key, p) in namedParameters() where p.rank == 2 {
                let residual = key.hasSuffix("out_proj.weight") || key.hasSuffix("linear2.weight")
                Init.normal(p, std: residual ? 0.02 / (2 * Double(nLayer)).squareRoot() : 0.02, generator: g.weights)
            }
        }
    }

    /// Logits `[B, T, vocabularySize]` for int64 tokens `[B, T]` (T ≤ blockSize).
    public override func forward(_ idx: Tensor) -> Tensor {
        require(idx.rank == 2 && idx.dtype == .int64, "GPT expects int64 tokens [batch, time], got \(idx.dtype) \(idx.shape)")
        let t = idx.shape[1]
        require(t <= blockSize, "GPT: \(t) tokens exceed the block size \(blockSize)")
        var x = drop(tokenEmbedding(idx) + positionEmbedding(Tensor.arange(t)))
        for block in blocks { x = block(x, isCausal: true) }
        x = norm(x)
        return head.map { $0(x) } ?? x.matmul(tokenEmbedding.weight, transposeB: true)
    }
}

/// A recurrent character model: token embedding, an LSTM (`numLayers` of `hiddenSize`, batch
/// first) and a linear head over every position.
public final class CharLSTM: Module {
    public let embedding: Embedding
    public let lstm: LSTM
    public let head: Linear

    public init(vocabularySize: Int, embeddingDim: Int, hiddenSize: Int, numLayers: Int, dropout: Double = 0, generators g: ModelGenerators) {
        embedding = Embedding(numEmbeddings: vocabularySize, embeddingDim: embeddingDim, generator: g.weights)
        // Dropout between the LSTM's layers draws from this rank's generator; its weights are
        // drawn again below from the weight generator (PyTorch's uniform ±1/√hiddenSize).
        lstm = LSTM(inputSize: embeddingDim, hiddenSize: hiddenSize, numLayers: numLayers, batchFirst: true, dropout: dropout, generator: g.dropout)
        head = Linear(inFeatures: hiddenSize, outFeatures: vocabularySize, generator: g.weights)
        super.init()
        let bound = 1 / Double(hiddenSize).squareRoot()
        noGrad { for p in lstm.parameters() { Init.uniform(p, low: -bound, high: bound, generator: g.weights) } }
    }

    /// Logits `[B, T, vocabularySize]` for int64 tokens `[B, T]`.
    public override func forward(_ idx: Tensor) -> Tensor {
        require(idx.rank == 2 && idx.dtype == .int64, "CharLSTM expects int64 tokens [batch, time], got \(idx.dtype) \(idx.shape)")
        return head(lstm(embedding(idx)).output)
    }
}

/// The language-model presets' models, from the options.
enum LanguageModelFactory {
    static func make(_ c: TrainerConfig, vocabularySize: Int, generators g: ModelGenerators, dropout: Double? = nil) throws -> Module {
        if c.model == .pretrained, let directory = c.pretrained {
            let lm = try CausalLM.fromPretrained(directory)
            guard vocabularySize <= lm.config.vocabularySize else {
                throw DataError.file(directory, "its tokenizer has \(vocabularySize) tokens but the model \(lm.config.vocabularySize)")
            }
            return lm
        }
        switch c.model {
        case .lstm:
            return CharLSTM(vocabularySize: vocabularySize, embeddingDim: c.nEmbd, hiddenSize: c.hiddenSize, numLayers: c.nLayer,
                            dropout: dropout ?? c.dropout, generators: g)
        default:
            return GPT(vocabularySize: vocabularySize, blockSize: c.blockSize, nLayer: c.nLayer, nHead: c.nHead, nEmbd: c.nEmbd,
                       dropout: dropout ?? c.dropout, tieEmbeddings: c.tieEmbeddings ?? true, generators: g)
        }
    }
}

/// The text a language model trains on: tokenized, split in order (training first, then
/// validation, then test, each the given fraction of the tokens), as next-token windows.
struct PreparedText: @unchecked Sendable {
    let tokenizer: Tokenizer
    let train: TokenWindows
    let val: TokenWindows?
    let test: TokenWindows?
    let source: String
    let tokens: Int
    /// The cache beside the run the ids came from, or the one to write once the run has started.
    var cachedFrom: String?
    var cacheToWrite: (cache: TokenCache, ids: TokenIDs)?

    /// `tokenizer`: a run's own, for another text measured with it (`trainer eval --data`).
    init(_ config: TrainerConfig, dataDirectory: String?, tokenizer given: Tokenizer? = nil) throws {
        let spec = try DataSpec.parse(config.data)
        if case .tokens(let file) = spec, let directory = config.pretrained {
            // Ids a pretrained tokenizer made (`trainer tokenize`, nanoGPT's prepare.py), mapped.
            // Training on ids needs no tokenizer: a directory without one Ember reads still trains.
            let vocabulary = try PretrainedConfig.load(directory).vocabularySize
            let tokenizer: Tokenizer
            do { tokenizer = try BPETokenizer.fromPretrained(directory) } catch {
                tokenizer = TokenIDsOnly(vocabularySize: vocabulary, directory: directory, reason: "\((error as? DataError)?.description ?? "\(error)")")
            }
            try self.init(config, tokenizer: tokenizer,
                          ids: try TokenIDs(mapping: file, bytesPerToken: vocabulary <= 1 << 16 ? 2 : 4, vocabularySize: vocabulary))
            return
        }
        if case .text(let path) = spec, let directory = config.pretrained, let runDirectory = config.runDir {
            try self.init(config, text: path, pretrained: directory, runDirectory: runDirectory)
            return
        }
        let path: String
        switch spec {
        case .shakespeare: path = try Shakespeare.bundledPath(dataDirectory: dataDirectory)
        case .text(let p): path = p
        default: throw ConfigError("--model \(config.model) trains on text: use --data shakespeare or text:PATH")
        }
        // 2 bytes a token (4 past 65,536 ids), shared by the three splits; the text and its
        // 32-bit ids are let go once the compact stream is made.
        let (tokenizer, ids): (Tokenizer, TokenIDs) = try {
            let text = try TextFile.read(path)
            let tokenizer: Tokenizer
            if let given {
                tokenizer = given
            } else if let directory = config.pretrained {
                tokenizer = try BPETokenizer.fromPretrained(directory)  // the model's own
            } else {
                tokenizer = config.tokenizer == "byte" ? ByteTokenizer() : CharTokenizer(corpus: text)
            }
            return (tokenizer, TokenIDs(try tokenizer.encodeIDs(text)))
        }()
        try self.init(config, tokenizer: tokenizer, ids: ids)
    }

    /// A corpus through a pretrained tokenizer: its ids from the cache beside the run when it
    /// holds them, else tokenized (and cached once the run has started: `LanguageModelTask.runDirectoryReady`).
    init(_ config: TrainerConfig, text path: String, pretrained directory: String, runDirectory: String) throws {
        let cache = try TokenCache(runDirectory: runDirectory, text: path, pretrained: directory)
        let tokenizer = try BPETokenizer.fromPretrained(directory)
        if let ids = cache.load(vocabularySize: try PretrainedConfig.load(directory).vocabularySize) {
            try self.init(config, tokenizer: tokenizer, ids: ids)
            cachedFrom = cache.path
        } else {
            let ids = TokenIDs(try tokenizer.encodeIDs(try TextFile.read(path)))
            try self.init(config, tokenizer: tokenizer, ids: ids)
            cacheToWrite = (cache, ids)
        }
    }

    /// The splits of a token stream: training first, then validation, then test.
    init(_ config: TrainerConfig, tokenizer: Tokenizer, ids: TokenIDs) throws {
        self.tokenizer = tokenizer
        let n = ids.count
        let nVal = Int((Double(n) * config.valFraction).rounded()), nTest = Int((Double(n) * config.testFraction).rounded())
        let nTrain = n - nVal - nTest
        func windows(_ range: Range<Int>, covering: Bool, what: String) throws -> TokenWindows? {
            guard !range.isEmpty else { return nil }
            do { return try TokenWindows(ids: ids.slice(range), blockSize: config.blockSize, covering: covering) } catch let e as DataError {
                throw DataError("--data \(config.data): the \(what) split (\(range.count) tokens): \(e.description); lower --block-size or change the fractions")
            }
        }
        guard let train = try windows(0..<nTrain, covering: false, what: "training") else {
            throw DataError("--data \(config.data): no training tokens left after the validation and test splits")
        }
        self.train = train
        val = try windows(nTrain..<(nTrain + nVal), covering: true, what: "validation")
        test = try windows((nTrain + nVal)..<n, covering: true, what: "test")
        source = config.data
        tokens = n
    }
}

/// A language model (`--model gpt` or `lstm`) as a task: next-token cross-entropy over every position,
/// loss per token (exact over ranks), perplexity, tokens/s; AdamW decays matrices only.
struct LanguageModelTask: TrainingTask, @unchecked Sendable {
    let config: TrainerConfig
    let text: PreparedText

    var name: String { config.model.rawValue }
    var metrics: [Metric] { [Metric("perplexity", .exponentiatedMean)] }

    func makeModel(generators g: ModelGenerators) throws -> Module {
        try LanguageModelFactory.make(config, vocabularySize: text.tokenizer.vocabularySize, generators: g)
    }

    static func data(_ w: TokenWindows) -> TaskData<PairBatch> {
        TaskData(count: w.count, weight: { Double(w.predictions(in: $0)) }, unit: "tokens") { w.batch($0) }
    }

    var dataNotice: String? {
        if let ids = text.tokenizer as? TokenIDsOnly {
            return "training on token ids without a tokenizer (\(ids.reason)); trainer sample prints ids, and RUN/hf/ has no tokenizer files"
        }
        return text.cachedFrom.map { "tokens of \(config.data) from the cache beside the run (\($0)), not tokenized again" }
    }

    /// Keeps a corpus tokenized at this start beside the run, for the next start to map.
    func runDirectoryReady(_ directory: String) throws {
        try text.cacheToWrite.map { try $0.cache.write($0.ids) }
    }

    func trainingData() -> TaskData<PairBatch> { Self.data(text.train) }
    func validationData() -> TaskData<PairBatch>? { text.val.map(Self.data) }
    func testData() -> TaskData<PairBatch>? { text.test.map(Self.data) }

    func trainingStep(model: Module, batch: PairBatch, log: inout MetricLog) -> Tensor {
        let logits = model(batch.input)
        let targets = batch.target.flatten()
        let loss = Losses.crossEntropy(logits.reshape([-1, logits.shape[2]]), targets, ignoreIndex: TokenWindows.ignoreIndex)
        let counted = Double(targets.intScalars.filter { $0 != TokenWindows.ignoreIndex }.count)
        log.record("perplexity", loss.doubleItem() * counted, count: counted)
        return loss
    }

    /// AdamW (or Adam) with weight decay on the matrices (and embeddings) only, as nanoGPT.
    func makeOptimizer(model: Module, options c: TrainerConfig) throws -> Optimizer {
        guard [.adam, .adamw].contains(c.optimizer) else { return OptimizerChoice.make(c, model.parameters()) }
        let params = model.parameters()
        let h = { (decay: Double) in Adam.Hyperparameters(betas: (c.beta1 ?? 0.9, c.beta2 ?? 0.999), weightDecay: decay) }
        let groups = [ParamGroup(params: params.filter { $0.rank >= 2 }, learningRate: c.lr, hyperparameters: h(c.weightDecay)),
                      ParamGroup(params: params.filter { $0.rank < 2 }, learningRate: c.lr, hyperparameters: h(0))]
        return c.optimizer == .adamw ? AdamW(paramGroups: groups) : Adam(paramGroups: groups)
    }

    /// The tokenizer travels with every checkpoint (and final.safetensors' metadata).
    func checkpointState() throws -> Data? { try SavedTokenizer.encode(text.tokenizer) }

    /// A run resumed on text that tokenizes differently would silently train other characters
    /// into the embeddings: refused, naming both.
    func restore(checkpointState: Data) throws {
        let saved = try SavedTokenizer.decode(checkpointState)
        guard try SavedTokenizer.encode(saved) == SavedTokenizer.encode(text.tokenizer) else {
            throw DataError("--data \(config.data) tokenizes differently from the run's text (\(TokenizerDescription.of(saved)) in the checkpoint, \(TokenizerDescription.of(text.tokenizer)) here): resume on the run's own text, or start a new run")
        }
    }
}

/// A tokenizer in a few words, for messages.
enum TokenizerDescription {
    static func of(_ t: Tokenizer) -> String {
        guard let c = t as? CharTokenizer else { return "bytes" }
        let sample = c.symbols.prefix(12).map { $0 == "\n" ? "\\n" : $0 }.joined()
        return "\(c.vocabularySize) characters '\(sample)\(c.vocabularySize > 12 ? "…" : "")'"
    }
}
