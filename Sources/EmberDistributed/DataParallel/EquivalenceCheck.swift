@_spi(Checks) import Ember

import Foundation

/// Checks the central promise of data parallelism on any communicator: N ranks, each training on
/// its share of every global batch, end with the weights one process gets from the whole batch,
/// and the replicas stay bitwise identical after every step. Used by the unit tests (threads)
/// and by `trainer check-ddp` under real `mpirun`. The optimizer's state is compared too: with a
/// sharded step each rank holds its shard of it, assembled by `optimizerStateDict`.
public enum EquivalenceCheck {
    public enum OptimizerKind: String, CaseIterable, Sendable { case sgd, adam }
    /// How each step ends: `try ddp.step(optimizer)`, or PyTorch's loop (`backward()`, then
    /// `optimizer.step()`, nothing data-parallel in between).
    public enum Loop: String, CaseIterable, Sendable { case ddpStep = "ddp-step", pytorch }

    public struct Outcome: CustomStringConvertible {
        public let optimizer: OptimizerKind
        public let world: Int
        public let sharded: Bool
        public let loop: Loop
        /// Largest difference from single-process weights, relative to each tensor's largest magnitude.
        public let maxRelativeDifference: Double
        public let replicasIdentical: Bool
        public var passed: Bool { replicasIdentical && maxRelativeDifference < 1e-5 }
        public var description: String {
            String(format: "ddp-check optimizer=%@ world=%d sharded_step=%@ loop=%@ max_rel_diff=%.2e replicas_identical=%@ %@",
                   optimizer.rawValue, world, sharded ? "on" : "off", loop.rawValue, maxRelativeDifference, replicasIdentical ? "true" : "false",
                   passed ? "PASS" : "FAIL")
        }
    }

    public static let globalBatch = 24, steps = 20

    static func makeModel() -> Sequential {
        let g = Generator(seed: 11)
        return Sequential(Linear(inFeatures: 6, outFeatures: 16, generator: g), Tanh(),
                          Linear(inFeatures: 16, outFeatures: 8, generator: g), ReLU(),
                          Linear(inFeatures: 8, outFeatures: 3, generator: g))
    }

    static let data: (x: Tensor, y: Tensor) = {
        let g = Generator(seed: 5)
        return (Tensor.randn([steps, globalBatch, 6], generator: g), Tensor.randn([steps, globalBatch, 3], generator: g))
    }()

    static func makeOptimizer(_ kind: OptimizerKind, _ model: Module) -> Optimizer {
        switch kind {
        case .sgd: return SGD(parameters: model.parameters(), learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3)
        case .adam: return Adam(parameters: model.parameters(), learningRate: 0.01)
        }
    }

    /// Weights, then optimizer state tensors in key order, as floats.
    static func values(_ model: Module, _ state: [String: Tensor]) -> [[Float]] {
        return model.parameters().map(\.scalars) + state.keys.sorted().map { state[$0]!.to(.float32).scalars }
    }

    /// One process, the whole global batch each step: the weights and optimizer state.
    public static func singleProcessWeights(_ kind: OptimizerKind) -> [[Float]] {
        let model = makeModel()
        let opt = makeOptimizer(kind, model)
        for s in 0..<steps {
            opt.zeroGrad()
            Losses.mse(model(data.x[s]), data.y[s]).backward()
            opt.step()
        }
        return values(model, opt.stateDict().tensors)
    }

    /// This rank's final weights and optimizer state after data-parallel training, and whether
    /// every step left the replicas identical (compared through an allgather of exact weight
    /// fingerprints).
    public static func dataParallelWeights(_ kind: OptimizerKind, comm: Communicator, bucketBytes: Int = 1 << 20,
                                           overlap: Bool = true, microBatches: Int = 1, sharded: Bool = false,
                                           loop: Loop = .ddpStep) throws -> (weights: [[Float]], identical: Bool) {
        require(globalBatch % (comm.worldSize * microBatches) == 0, "the global batch must split evenly")
        let model = makeModel()
        let ddp = try DataParallel(model, communicator: comm, bucketCapacityBytes: bucketBytes, overlap: overlap, shardOptimizerStep: sharded)
        let opt = makeOptimizer(kind, model)
        let share = globalBatch / comm.worldSize, micro = share / microBatches
        var identical = true
        for s in 0..<steps {
            opt.zeroGrad()
            let x = data.x[s].narrow(dim: 0, start: comm.rank * share, length: share)
            let y = data.y[s].narrow(dim: 0, start: comm.rank * share, length: share)
            for m in 0..<microBatches {
                let xm = x.narrow(dim: 0, start: m * micro, length: micro), ym = y.narrow(dim: 0, start: m * micro, length: micro)
                let step = { (Losses.mse(try ddp(xm), ym) / Float(microBatches)).backward() }
                if m < microBatches - 1 { try ddp.noSync(step) } else { try step() }
            }
            switch loop {
            case .ddpStep: try ddp.step(opt)
            case .pytorch: opt.step()
            }
            let prints = try comm.allgather(fingerprint(model.parameters()))
            identical = identical && prints.allSatisfy { $0 == prints[0] }
        }
        return (values(model, try ddp.optimizerStateDict(opt).tensors), identical)
    }

    /// Exact fingerprint of float32 weights: bit patterns folded into 32-bit halves (exact in Doubles).
    static func fingerprint(_ params: [Tensor]) -> [Double] {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x8422_2325
        for p in params {
            for v in p.scalars {
                a = (a ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3
                b = b &+ UInt64(v.bitPattern) &* 31
            }
        }
        return [Double(a >> 32), Double(a & 0xffff_ffff), Double(b & 0xffff_ffff)]
    }

    public static func maxRelativeDifference(_ a: [[Float]], _ b: [[Float]]) -> Double {
        var worst = 0.0
        for (x, y) in zip(a, b) {
            let scale = Double(y.map(abs).max() ?? 1)
            for (u, v) in zip(x, y) { worst = max(worst, Double(abs(u - v)) / scale) }
        }
        return worst
    }

    /// Runs the check for `kind` on `comm` (every rank must call it). The sharded run uses small
    /// buckets, so shards cut through parameters and buckets hold several.
    public static func run(_ kind: OptimizerKind, comm: Communicator, sharded: Bool = false, loop: Loop = .ddpStep) throws -> Outcome {
        let reference = singleProcessWeights(kind)
        let (weights, identical) = try dataParallelWeights(kind, comm: comm, bucketBytes: sharded ? 512 : 1 << 20, sharded: sharded, loop: loop)
        return Outcome(optimizer: kind, world: comm.worldSize, sharded: sharded, loop: loop,
                       maxRelativeDifference: maxRelativeDifference(weights, reference), replicasIdentical: identical)
    }
}
