@_spi(Checks) import Ember
import Foundation

/// Data-parallel training of one replica per rank, like PyTorch's DistributedDataParallel.
///
/// At construction every rank's parameters and buffers are checked for the same names and shapes
/// and overwritten with rank 0's, so replicas start identical. Gradients are packed into flat
/// buckets in reverse parameter order (the order backward produces them); when the last gradient
/// of a bucket has been accumulated, that bucket's allreduce starts on the communication thread
/// while backward continues. When backward ends, it waits for every bucket and points each
/// gradient at its average, so every rank then takes the same optimizer step: PyTorch's loop
/// needs nothing more.
///
/// ```swift
/// let ddp = try DataParallel(model, communicator: comm)
/// optimizer.zeroGrad()
/// let loss = criterion(try ddp(x), y)
/// loss.backward()          // gradients are averaged over the ranks when it returns
/// optimizer.step()
/// ```
///
/// With a sharded step (`shardOptimizerStep: true`) train with `try ddp.step(optimizer)`; a plain
/// `optimizer.step()` still works (it first completes the averages, and updates unsharded).
public final class DataParallel {
    public let module: Module
    public let communicator: Communicator
    /// Bytes of gradients per bucket (parameters are never split across buckets).
    public let bucketCapacity: Int
    /// Whether training-mode forward passes first copy rank 0's buffers (BatchNorm statistics).
    public let broadcastBuffers: Bool
    /// The buckets and their reduction (GradientReducer.swift).
    public let reducer: GradientReducer
    /// Buffers (BatchNorm statistics), found once: reflection is too slow for every forward.
    let buffers: [Tensor]
    var syncEnabled = true
    private var hooks: [HookHandle] = []

    /// What `observer` hears.
    public enum ReductionEvent {
        /// Bucket `index`'s collective ran from `start` to `end` (on the communication thread
        /// when overlapping backward).
        case bucket(index: Int, start: UInt64, end: UInt64, overlapped: Bool)
        /// Waiting for the reductions after backward, from `start` to `end`.
        case wait(start: UInt64, end: UInt64)
    }

    /// - Parameters:
    ///   - bucketCapacityBytes: size of a gradient bucket; 1 MiB suits CPU allreduce (large enough to
    ///     reach full bandwidth, small enough that the first bucket starts early in backward).
    ///   - overlap: whether buckets start during backward on the communication thread (true) or
    ///     all when backward ends, on the calling thread (false).
    ///   - shardOptimizerStep: see `shardsOptimizerStep`; train with `step(_:)`.
    ///   - tuneTransport: let a `TransportTuner` pick the transport when the communicator leaves
    ///     it open (false: the communicator's `transport` stays as set, for measurements).
    ///   - reduceDtype: `.bfloat16` exchanges float32 gradients in bfloat16, half the bytes
    ///     (BFloat16Reduction.swift says how they are summed); not with a sharded step.
    public init(_ module: Module, communicator: Communicator, bucketCapacityBytes: Int = 1 << 20,
                overlap: Bool = true, broadcastBuffers: Bool = true, shardOptimizerStep: Bool = false,
                tuneTransport: Bool = true, reduceDtype: DType = .float32) throws {
        self.module = module
        self.communicator = communicator
        self.bucketCapacity = bucketCapacityBytes
        self.broadcastBuffers = broadcastBuffers
        buffers = module.namedBuffers().map(\.1)
        try DataParallel.checkSameStructure(module, communicator)
        for p in module.parameters() + module.namedBuffers().map(\.1) where p.dtype.isFloatingPoint || p.dtype == .int64 {
            try communicator.broadcast(p, root: 0)
        }
        let trained = module.namedParameters().filter { $0.1.requiresGrad }.map(\.1)
        reducer = try GradientReducer(parameters: trained, communicator: communicator, capacityBytes: bucketCapacityBytes,
                                      overlap: overlap, sharded: shardOptimizerStep && communicator.worldSize > 1, reduceDtype: reduceDtype)
        // A world of one has nothing to average: no hooks, no buckets in flight.
        guard communicator.worldSize > 1 else { return }
        for (i, p) in trained.enumerated() {
            hooks.append(p.registerPostAccumulateGradHook { [unowned self] _ in self.gradientReady(i) })
        }
        // (bfloat16 buckets travel over MPI's own transport whatever the choice: nothing to tune.)
        if tuneTransport && reduceDtype == .float32, let selectable = communicator.transportSelection, selectable.transportIsTuned {
            reducer.tuner = TransportTuner(apply: { [unowned selectable] in selectable.transport = $0 ? .sharedMemory : .mpi },
                                           agree: { [unowned selectable] in try selectable.allreduceMax($0) })
        }
    }

    deinit {
        for h in hooks { h.remove() }
        reducer.release()
    }

    /// Whether buckets start during backward on the communication thread (true) or all in
    /// `synchronize()` on the calling thread (false).
    public var overlap: Bool { reducer.overlap }
    /// Whether gradients are divided by the world size as backward writes them (power-of-two
    /// worlds) rather than after the allreduce.
    public var prescaled: Bool { reducer.prescaled }
    /// Whether `step(_:)` shards the optimizer's work over the ranks (ZeRO stage 1's scheme):
    /// gradients are reduce-scattered, each rank updates its shard of the parameters, and the
    /// updated shards are allgathered. Same communication as an allreduce, 1/world of the update.
    public var shardsOptimizerStep: Bool { reducer.shardsOptimizerStep }
    public var buckets: [GradientBucket] { reducer.buckets }
    /// The dtype gradients travel in between the ranks (float32 buckets; float64 ones stay float64).
    public var reduceDtype: DType { reducer.reduceDtype }
    /// Number of buckets and their sizes in elements (for logs and tests).
    public var bucketSizes: [Int] { reducer.buckets.map { $0.flagOffset } }
    /// Told when each bucket's reduction ran and how long backward's end waited for them
    /// (monotonic nanoseconds), for a timeline; nil costs nothing.
    public var observer: ((ReductionEvent) -> Void)? {
        get { reducer.observer }
        set { reducer.observer = newValue }
    }
    /// The latest transport trial, when the transport is being tuned: median step seconds over
    /// MPI and over shared memory, and whether shared memory was chosen.
    public var lastTransportTrial: (mpi: Double, sharedMemory: Double, chose: Bool)? { reducer.tuner?.lastTrial }
    /// How many transport trials there have been and how many chose shared memory (nil when the
    /// transport is not tuned).
    public var transportTrials: (trials: Int, sharedMemory: Int)? { reducer.tuner.map { ($0.trials, $0.sharedMemoryWins) } }

    /// Fails on every rank when the ranks' models differ in parameter names or shapes.
    static func checkSameStructure(_ module: Module, _ comm: Communicator) throws {
        let signature = (module.namedParameters() + module.namedBuffers())
            .map { "\($0.0):\($0.1.shape):\($0.1.dtype)" }.joined(separator: ";")
        // FNV-1a, truncated to 52 bits so it survives a trip through a Double.
        let hash = Checksum.fnv1a(signature)
        let mine = [Double(module.parameters().count), Double(hash & ((1 << 52) - 1))]
        let all = try comm.allgather(mine)
        let differing = all.indices.filter { all[$0] != all[0] }
        if !differing.isEmpty {
            throw CommunicatorError.mismatch(
                "ranks \(differing.map(String.init).joined(separator: ", ")) have a model with different parameter names or shapes than rank 0 "
                    + "(rank \(comm.rank) has \(module.parameters().count) parameters); every rank must build the same model")
        }
    }

    /// Runs the wrapped module, first copying rank 0's buffers in training mode.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try broadcastBuffersForTraining()
        return module(x)
    }

    /// In training mode (with `broadcastBuffers`), copies rank 0's buffers (batch norm
    /// statistics) into this replica: what a forward through the wrapper does first, for code
    /// that calls the module itself (a task's own step with several inputs).
    public func broadcastBuffersForTraining() throws {
        if module.isTraining && broadcastBuffers && communicator.worldSize > 1 {
            for b in buffers { try communicator.broadcast(b, root: 0) }
        }
    }

    /// Runs `body` (forward and backward of micro-batches) without synchronising: gradients only
    /// accumulate locally. The first backward after it synchronises everything accumulated.
    public func noSync<R>(_ body: () throws -> R) rethrows -> R {
        syncEnabled = false
        defer { syncEnabled = true }
        return try body()
    }

    /// What backward's end runs, made once (not a closure per parameter hook per step).
    private lazy var endOfBackward: () throws -> Void = { [unowned self] in try self.reducer.backwardEnded() }

    /// A parameter's gradient has been accumulated in backward: the reducer starts its bucket
    /// when complete, and (once per backward) the engine finishes the reduction when backward ends.
    private func gradientReady(_ index: Int) {
        guard syncEnabled else { return }
        reducer.gradientReady(index, firstOfBackward: queueBackwardCallback(once: self, endOfBackward))
    }

    /// Waits for every bucket and replaces each gradient by its average over ranks. A parameter
    /// that had no gradient on any rank keeps `grad == nil` (the optimizer skips it, as it would
    /// in a single process). Backward does this by itself when it ends, so this only returns
    /// then; call it after setting gradients by hand, or to complete a sharded backward's
    /// gradients (it allgathers the reduce-scattered averages).
    public func synchronize() throws {
        guard syncEnabled && communicator.worldSize > 1 else { return }
        try reducer.synchronize()
    }
}
