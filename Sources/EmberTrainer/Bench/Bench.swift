import Ember
import EmberDistributed
import Foundation

/// `trainer bench`: full training steps (zeroGrad, forward, loss, backward, optimizer step) of
/// fixed models on synthetic data, timed after a warm-up.
public enum Bench {
    public static let models = ["seednet", "mlp", "cnn", "gpt", "lstm"]

    public struct Result {
        public let name: String
        public let world: Int, threads: Int
        public let samplesPerSecond: Double, stepMilliseconds: Double
        /// The share of the step spent in matrix products, and their speed there.
        public let productFraction: Double, productGFLOPS: Double, peakResidentMB: Double
        /// What the products ran on (`ProductEngine.description`: `onednn:avx512_core`).
        public var products = ProductEngine.description
        public var overlap = false
        public var shardedStep = false
        /// How gradients travel between ranks: "auto" (shared memory or MPI, whichever makes
        /// steps faster), "shm" or "mpi".
        public var transport = "mpi"
        public var optimizer = "sgd"
        /// `--deterministic`: samples per micro-batch (nil: the ordinary data-parallel step).
        public var microBatch: Int?
        /// Mean microseconds per step in forward (with zeroGrad and the loss), backward (which ends
        /// by waiting for the gradient reductions), what `synchronize()` still does after that
        /// (nothing, unless gradients are pending) and the optimizer step, on this rank (when asked for).
        public var phases: [Double]?
        /// Tokens per sample, for language models (the line then shows `tokens_per_s` too).
        public var tokensPerSample: Int?
        /// The products' precision (`--precision bf16` adds `precision=bf16` to the line).
        public var precision = Precision.float32
        /// Under bf16: the share of the step spent rounding the products' operands (apart from
        /// `productFraction`, which is the multiplications' own).
        public var roundingFraction = 0.0
        /// The dtype gradients travel in (`--reduce-dtype bf16` adds `reduce=bf16`).
        public var reduceDtype = DType.float32

        public var phaseLine: String? {
            phases.map { p in
                String(format: "%@ phases_us forward=%.0f backward=%.0f synchronize=%.0f optimizer=%.0f", name, p[0], p[1], p[2], p[3])
            }
        }

        public var line: String {
            String(format: "%@ world=%d threads=%d samples_per_s=%.0f step_ms=%.3f products_pct=%.1f products_gflops=%.1f peak_rss_mb=%.1f products=%@",
                   name, world, threads, samplesPerSecond, stepMilliseconds, productFraction * 100, productGFLOPS, peakResidentMB, products)
                + (world > 1 ? " overlap=\(overlap ? "on" : "off") transport=\(transport) sharded_step=\(shardedStep ? "on" : "off")" : "")
                + (optimizer == "sgd" ? "" : " optimizer=\(optimizer)")
                + (microBatch.map { " deterministic=on micro_batch=\($0)" } ?? "")
                + (tokensPerSample.map { String(format: " tokens_per_s=%.0f", samplesPerSecond * Double($0)) } ?? "")
                + (precision == .bfloat16 ? String(format: " rounding_pct=%.1f", roundingFraction * 100)
                    + " precision=bf16 bf16_units=\(Precision.bfloat16Units ?? "emulated")" : "")
                + (reduceDtype == .bfloat16 ? " reduce=bf16" : "")
        }
    }

    /// Each model's specified optimizer (`kind` "adam": Adam at 0.001 in place of SGD).
    static func makeOptimizer(_ name: String, pretrained: Bool, kind: String, _ params: [Tensor], lr: Double, momentum: Double) -> Optimizer {
        if pretrained { return AdamW(parameters: params, learningRate: lr, weightDecay: 0.1) }
        switch name {
        case "gpt": return AdamW(parameters: params, learningRate: 0.001, weightDecay: 0.1)
        case "lstm": return AdamW(parameters: params, learningRate: 0.001)
        default: return kind == "adam" ? Adam(parameters: params, learningRate: 0.001) : SGD(parameters: params, learningRate: lr, momentum: momentum)
        }
    }

    /// Seconds of `steps` timed steps after `warmup` untimed ones, products profiled meanwhile; the
    /// slowest rank's, since it sets the pace of a synchronous job.
    static func time(steps: Int, warmup: Int, comm: Communicator, afterWarmup: () -> Void, _ step: () throws -> Void) throws -> Double {
        for _ in 0..<warmup { try step() }
        afterWarmup()
        try comm.barrier()
        KernelProfile.isEnabled = true
        KernelProfile.reset()
        defer { KernelProfile.isEnabled = false }
        let start = Date()
        for _ in 0..<steps { try step() }
        var e = [Date().timeIntervalSince(start)]
        try e.withUnsafeMutableBufferPointer { try comm.allreduce($0.baseAddress!, count: 1, op: .max) }
        return e[0]
    }

    /// A Hugging Face directory's model fine-tuned as `trainer train --pretrained` does: 2 windows
    /// of up to 256 tokens a step, AdamW at 3e-5 (`examples/pytorch/pretrained_bench.py` is the twin).
    static func pretrainedSetup(_ directory: String, generator g: Generator) throws -> (model: Module, x: Tensor, y: Tensor, batch: Int, loss: (Tensor, Tensor) -> Tensor, lr: Double, momentum: Double) {
        let m = try CausalLM.fromPretrained(directory)
        let (v, t) = (m.config.vocabularySize, min(256, m.config.maxPositions))
        return (m, Tensor.randint(high: v, [2, t], generator: g), Tensor.randint(high: v, [2, t], generator: g), 2,
                { Losses.crossEntropy($0.reshape([-1, v]), $1.flatten()) }, 3e-5, 0)
    }

    /// The benchmark models exactly as specified (batch, loss and optimizer included): the
    /// trainer's own presets (`ModelFactory`), so `bench` times what `train` trains.
    static func setup(_ name: String, generator g: Generator) -> (model: Module, x: Tensor, y: Tensor, batch: Int, loss: (Tensor, Tensor) -> Tensor, lr: Double, momentum: Double) {
        var config = TrainerConfig()
        config.model = ModelName(rawValue: name)
        func preset(_ sampleShape: [Int], _ outputs: Int) -> Module {
            do { return try ModelFactory.make(config, sampleShape: sampleShape, outputs: outputs, generator: g) } catch { fatalError("\(error)") }
        }
        switch name {
        case "seednet":
            let m = preset([10], 1)
            return (m, Tensor.randn([100, 10], generator: g), Tensor.randn([100, 1], generator: g), 100, { Losses.mse($0, $1) }, 0.01, 0)
        case "gpt":
            // nanoGPT's character-level model: vocabulary 76, 64 tokens, 4 pre-norm blocks of width 128.
            let m = GPT(vocabularySize: 76, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128,
                        generators: ModelGenerators(weights: g, dropout: Generator(seed: 1)))
            return (m, Tensor.randint(high: 76, [32, 64], generator: g), Tensor.randint(high: 76, [32, 64], generator: g), 32,
                    { Losses.crossEntropy($0.reshape([-1, 76]), $1.flatten()) }, 0.001, 0)
        case "lstm":
            // Embedding 76→128, LSTM 128→256, Linear 256→76 over 64 tokens.
            let m = CharLSTM(vocabularySize: 76, embeddingDim: 128, hiddenSize: 256, numLayers: 1,
                             generators: ModelGenerators(weights: g, dropout: Generator(seed: 1)))
            return (m, Tensor.randint(high: 76, [32, 64], generator: g), Tensor.randint(high: 76, [32, 64], generator: g), 32,
                    { Losses.crossEntropy($0.reshape([-1, 76]), $1.flatten()) }, 0.001, 0)
        case "mlp":
            let m = preset([784], 10)
            return (m, Tensor.randn([64, 784], generator: g), Tensor.randint(high: 10, [64], generator: g), 64, { Losses.crossEntropy($0, $1) }, 0.01, 0.9)
        default:
            let m = preset([1, 28, 28], 10)
            return (m, Tensor.randn([64, 1, 28, 28], generator: g), Tensor.randint(high: 10, [64], generator: g), 64, { Losses.crossEntropy($0, $1) }, 0.01, 0.9)
        }
    }

    /// The batch per rank of a benchmark model.
    public static func batch(of name: String) -> Int { setup(name, generator: Generator(seed: 0)).batch }

    /// Runs one model for `steps` timed steps after `warmup` untimed ones.
    /// `shardedStep` nil decides as the trainer does (`DataParallel.shardingPaysOff`); sharded,
    /// the synchronize phase is 0 and the optimizer phase is the whole sharded step. `optimizer: "adam"` trains with Adam (lr 0.001) in place of the model's SGD.
    /// `deterministicMicroBatch` times `--deterministic`'s step instead: this rank's batch in
    /// micro-batches of that size, their gradients added in micro-batch order over the ranks.
    public static func run(_ name: String, steps: Int, warmup: Int, threads: Int, comm: Communicator, overlap: Bool = true,
                           shardedStep: Bool? = nil, optimizer kind: String = "sgd", phases timePhases: Bool = false,
                           deterministicMicroBatch: Int? = nil, precision: Precision = .float32, pretrained: String? = nil,
                           reduceDtype: DType = .float32) throws -> Result {
        setNumThreads(threads)
        let s = try pretrained.map { try pretrainedSetup($0, generator: Generator(seed: 0)) } ?? setup(name, generator: Generator(seed: 0))
        let languageModel = ["gpt", "lstm"].contains(name) || pretrained != nil
        let micro = deterministicMicroBatch
        if let micro, s.batch % micro != 0 { throw ConfigError("--micro-batch \(micro) must divide \(name)'s batch of \(s.batch)") }
        let sharded = micro == nil && (shardedStep ?? (reduceDtype == .float32 && DataParallel.shardingPaysOff(parameterCount: s.model.parameterCount, worldSize: comm.worldSize)))
        let ddp = try DataParallel(s.model, communicator: comm, overlap: overlap, shardOptimizerStep: sharded, reduceDtype: reduceDtype)
        let exact = micro == nil ? nil : try ddp.deterministicGradients()
        let optimizer = makeOptimizer(name, pretrained: pretrained != nil, kind: kind, s.model.parameters(), lr: s.lr, momentum: s.momentum)
        let clock = PhaseClock()
        func step() throws {
            var t = DispatchTime.now().uptimeNanoseconds
            if let micro, let exact {
                // This rank's batch in micro-batches, their gradients added in order over the ranks.
                let count = s.batch / micro
                for k in 0..<count {
                    try exact.microBatch(k) {
                        s.loss(s.model(s.x.narrow(dim: 0, start: k * micro, length: micro)), s.y.narrow(dim: 0, start: k * micro, length: micro)).backward()
                    }
                }
                clock.lap(1, since: &t)
                try exact.reduce(microBatches: count * comm.worldSize)
                clock.lap(2, since: &t)
                optimizer.step()
                optimizer.zeroGrad()
                return clock.lap(3, since: &t)
            }
            optimizer.zeroGrad()
            let loss = s.loss(try ddp(s.x), s.y)
            clock.lap(0, since: &t)
            loss.backward()
            clock.lap(1, since: &t)
            if ddp.shardsOptimizerStep {
                clock.lap(2, since: &t)
                try ddp.step(optimizer)
            } else {
                try ddp.synchronize()
                clock.lap(2, since: &t)
                optimizer.step()
            }
            clock.lap(3, since: &t)
        }
        let elapsed = try time(steps: steps, warmup: warmup, comm: comm, afterWarmup: { clock.on = timePhases }) {
            try autocast(precision) { try step() }
        }
        var result = Result(name: name, world: comm.worldSize, threads: threads, batch: s.batch, steps: steps, elapsed: elapsed)
        result.overlap = overlap
        result.shardedStep = ddp.shardsOptimizerStep
        result.transport = comm.transportSelection?.transportName ?? "mpi"
        result.optimizer = languageModel ? "adamw" : kind
        result.microBatch = micro
        (result.precision, result.reduceDtype) = (precision, ddp.reduceDtype)
        if languageModel { result.tokensPerSample = s.x.shape[1] }
        if timePhases { result.phases = clock.nanoseconds.map { Double($0) / Double(steps) / 1000 } }
        return result
    }

    /// Time per step phase (forward, backward, synchronize, optimizer), summed while `on`.
    private final class PhaseClock {
        var nanoseconds = [UInt64](repeating: 0, count: 4)
        var on = false

        /// Adds the time since `start` to `phase` and restarts `start` from now.
        func lap(_ phase: Int, since start: inout UInt64) {
            guard on else { return }
            let now = DispatchTime.now().uptimeNanoseconds
            nanoseconds[phase] += now - start
            start = now
        }
    }

    /// Gradient averaging through DataParallel's buckets against one raw allreduce of the same
    /// bytes, both over MPI (like for like), then `synchronize()` over shared memory when the ranks
    /// share a node or within each node. Returns a line: `allreduce world=W bytes=B raw_ms=… … efficiency=…`.
    public static func allreduce(comm: Communicator, megabytes: Double = 4, iterations: Int = 30) throws -> String {
        // A model of 32 equal layers holding `megabytes` of float32 parameters.
        let perLayer = max(1, Int(megabytes * 1_048_576 / 4 / 32))
        let g = Generator(seed: 0)
        let model = Sequential((0..<32).map { _ in Linear(inFeatures: perLayer / 16, outFeatures: 16, bias: false, generator: g) })
        let total = model.parameterCount
        let ddp = try DataParallel(model, communicator: comm, overlap: false, tuneTransport: false)
        let mpi = comm.transportSelection
        let before = mpi?.transport
        defer { if let before { mpi?.transport = before } }
        mpi?.transport = .mpi
        let params = model.parameters()
        for p in params { p.grad = Tensor.onesLike(p) }
        let raw = Tensor.ones([total])
        func time(_ body: () throws -> Void) throws -> Double {
            try body()
            try comm.barrier()
            let start = Date()
            for _ in 0..<iterations { try body() }
            var t = [Date().timeIntervalSince(start) / Double(iterations)]
            try t.withUnsafeMutableBufferPointer { try comm.allreduce($0.baseAddress!, count: 1, op: .max) }
            return t[0]
        }
        let rawSeconds = try time { try comm.allreduce(raw, op: .sum) }
        let bucketSeconds = try time {
            for p in params where p.grad == nil { p.grad = Tensor.onesLike(p) }
            try ddp.synchronize()
        }
        // The same bucket allreduces alone (no averaging pass): what bucketing itself costs.
        let transportSeconds = try time {
            let requests = ddp.buckets.map { b in comm.allreduceAsync(b.buffer.mutablePointer(Float.self), count: b.buffer.count, op: .sum) }
            for r in requests { try r.wait() }
        }
        var line = String(format: "allreduce world=%d bytes=%d buckets=%d raw_ms=%.3f buckets_ms=%.3f synchronize_ms=%.3f transport_efficiency=%.2f efficiency=%.2f",
                          comm.worldSize, total * 4, ddp.bucketSizes.count, rawSeconds * 1000, transportSeconds * 1000, bucketSeconds * 1000,
                          rawSeconds / transportSeconds, rawSeconds / bucketSeconds)
        if let mpi, mpi.usesSharedMemory || mpi.spansNodes {
            mpi.transport = .sharedMemory
            line += String(format: mpi.spansNodes ? " shm_mpi_synchronize_ms=%.3f" : " shm_synchronize_ms=%.3f", try time {
                for p in params where p.grad == nil { p.grad = Tensor.onesLike(p) }
                try ddp.synchronize()
            } * 1000)
        }
        return line
    }

    /// DataLoader throughput on MNIST-shaped data (5,000 samples of 1×28×28, batch 64,
    /// shuffled, prefetching), to set against the samples per second training consumes.
    public static func loader(epochs: Int = 20) -> String {
        let g = Generator(seed: 0)
        let data = TensorDataset(inputs: Tensor.rand([5000, 1, 28, 28], generator: g), targets: Tensor.randint(high: 10, [5000], generator: g))
        let loader = DataLoader(data, batchSize: 64, shuffle: true, seed: 0)
        var samples = 0
        let start = Date()
        for _ in 0..<epochs {
            for (x, _) in loader { samples += x.shape[0] }
        }
        let seconds = Date().timeIntervalSince(start)
        return String(format: "loader batch=64 samples_per_s=%.0f batch_ms=%.4f", Double(samples) / seconds,
                      seconds / Double(epochs * loader.count) * 1000)
    }

    /// Peak resident set size of this process.
    public static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}

// Outside the struct, so its memberwise initialiser stays.
extension Bench.Result {
    /// A run of `steps` steps of `batch` samples per rank that took `elapsed` seconds, with
    /// what the kernels' profile counted meanwhile.
    init(name: String, world: Int, threads: Int, batch: Int, steps: Int, elapsed: Double) {
        let stepSeconds = elapsed / Double(steps)
        self.init(name: name, world: world, threads: threads,
                  samplesPerSecond: Double(batch * world) / stepSeconds, stepMilliseconds: stepSeconds * 1000,
                  productFraction: KernelProfile.productSeconds / max(elapsed, 1e-9),
                  productGFLOPS: KernelProfile.productOperations / max(KernelProfile.productSeconds, 1e-9) / 1e9,
                  peakResidentMB: Bench.peakResidentMegabytes())
        roundingFraction = KernelProfile.roundingSeconds / max(elapsed, 1e-9)
    }
}
