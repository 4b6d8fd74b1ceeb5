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
public final class DataParallel: PendingGradient {
    public let module: Module
    public let communicator: Communicator
    /// Bytes of gradients per bucket (parameters are never split across buckets).
    public let bucketCapacity: Int
    /// Whether buckets start during backward on the communication thread (true) or all in
    /// `synchronize()` on the calling thread (false).
    public let overlap: Bool
    /// Whether gradients are divided by the world size as backward writes them (power-of-two
    /// worlds) rather than after the allreduce.
    public private(set) var prescaled = false
    /// Whether training-mode forward passes first copy rank 0's buffers (BatchNorm statistics).
    public let broadcastBuffers: Bool
    /// Whether `step(_:)` shards the optimizer's work over the ranks (ZeRO stage 1's scheme):
    /// gradients are reduce-scattered, each rank updates its shard of the parameters, and the
    /// updated shards are allgathered. Same communication as an allreduce, 1/world of the update.
    public let shardsOptimizerStep: Bool

    let parameters: [Tensor]
    /// Buffers (BatchNorm statistics), found once: reflection is too slow for every forward.
    let buffers: [Tensor]
    public let buckets: [GradientBucket]
    private let bucketOf: [Int]
    private var nextToLaunch = 0
    var syncEnabled = true
    /// Where this step's reduction stands: nothing in flight (`idle`), reduce-scattered by the end
    /// of backward with the gradients not yet whole (`reduced`, sharded only), or averaged and
    /// written back by the end of backward (`synchronized`).
    enum Phase { case idle, reduced, synchronized }
    private(set) var phase = Phase.idle
    private var hooks: [HookHandle] = []
    /// Each parameter's bucket and its position in it.
    let place: [(bucket: Int, member: Int)]
    /// Picks the transport for the buckets when the communicator leaves it open (`TransportTuner`).
    private var tuner: TransportTuner?
    /// Told when each bucket's reduction ran and how long backward's end waited for them
    /// (monotonic nanoseconds), for a timeline; nil costs nothing.
    public var observer: ((ReductionEvent) -> Void)?

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
    ///   - shardOptimizerStep: see `shardsOptimizerStep`; train with `step(_:)`.
    ///   - tuneTransport: let a `TransportTuner` pick the transport when the communicator leaves
    ///     it open (false: the communicator's `transport` stays as set, for measurements).
    public init(_ module: Module, communicator: Communicator, bucketCapacityBytes: Int = 1 << 20,
                overlap: Bool = true, broadcastBuffers: Bool = true, shardOptimizerStep: Bool = false,
                tuneTransport: Bool = true) throws {
        self.module = module
        self.communicator = communicator
        self.bucketCapacity = bucketCapacityBytes
        self.overlap = overlap
        self.broadcastBuffers = broadcastBuffers
        self.shardsOptimizerStep = shardOptimizerStep && communicator.worldSize > 1
        let named = module.namedParameters().filter { $0.1.requiresGrad }
        parameters = named.map(\.1)
        buffers = module.namedBuffers().map(\.1)
        try DataParallel.checkSameStructure(module, communicator)
        for p in module.parameters() + module.namedBuffers().map(\.1) where p.dtype.isFloatingPoint || p.dtype == .int64 {
            try communicator.broadcast(p, root: 0)
        }

        let trained = named.map(\.1)
        let groups = BucketAssignment.assign(trained.map { (bytes: $0.count * $0.dtype.byteSize, dtype: $0.dtype) },
                                             capacityBytes: bucketCapacityBytes)
        let buckets = try groups.map { try GradientBucket(members: $0, parameters: trained, communicator: communicator) }
        var bucketOf = [Int](repeating: 0, count: parameters.count)
        for (b, members) in groups.enumerated() { for m in members { bucketOf[m] = b } }
        self.buckets = buckets
        self.bucketOf = bucketOf
        var place = [(bucket: Int, member: Int)](repeating: (0, 0), count: parameters.count)
        for (bi, b) in buckets.enumerated() { for (k, m) in b.members.enumerated() { place[m] = (bi, k) } }
        self.place = place
        // A world of one has nothing to average: no hooks, no buckets in flight.
        guard communicator.worldSize > 1 else { return }
        for (i, p) in parameters.enumerated() {
            hooks.append(p.registerPostAccumulateGradHook { [unowned self] _ in self.gradientReady(i) })
        }
        // Gradients are born in their bucket ("gradient as bucket view"): no packing copy. For a
        // power-of-two world they are born divided by it, so the allreduce's sum is the average
        // with no pass of its own (Horovod's prescaling; exact for such a world).
        let n = communicator.worldSize
        prescaled = n & (n - 1) == 0
        for b in buckets {
            for (m, slot) in zip(b.members, b.slots) {
                parameters[m].setGradientDestination(slot, scale: prescaled ? 1 / Double(n) : 1)
            }
        }
        if tuneTransport, let selectable = communicator as? TransportSelecting, selectable.transportIsTuned {
            tuner = TransportTuner(apply: { [unowned selectable] in selectable.transport = $0 ? .sharedMemory : .mpi },
                                   agree: { [unowned selectable] in try selectable.allreduceMax($0) })
        }
        if shardsOptimizerStep {
            for b in buckets {
                // Ordinary memory, not a shared segment: other ranks never read the lines this
                // rank's optimizer writes (`SharedMemoryReducer.gatherShardsStaged` says why).
                let values = Tensor.zeros([b.flagOffset], dtype: b.buffer.dtype)
                for (m, offset) in zip(b.members, b.offsets) {
                    let view = values.flatView(offset: offset, shape: parameters[m].shape)
                    view.copy_(parameters[m])
                    parameters[m].set_(view)
                }
                b.values = values
            }
        }
    }

    deinit {
        for h in hooks { h.remove() }
        // Only what is still ours: another DataParallel may wrap the same model by now.
        for b in buckets {
            for (m, slot) in zip(b.members, b.slots) where parameters[m].gradientBuffer === slot {
                parameters[m].setGradientDestination(nil)
            }
        }
    }

    /// Fails on every rank when the ranks' models differ in parameter names or shapes.
    static func checkSameStructure(_ module: Module, _ comm: Communicator) throws {
        let signature = (module.namedParameters() + module.namedBuffers())
            .map { "\($0.0):\($0.1.shape):\($0.1.dtype)" }.joined(separator: ";")
        // FNV-1a, truncated to 52 bits so it survives a trip through a Double.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in signature.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
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
    private lazy var endOfBackward: () throws -> Void = { [unowned self] in try self.backwardEnded() }

    /// A parameter's gradient has been accumulated in backward: start its bucket when complete,
    /// and (once per backward) ask the engine to finish the reduction when backward ends.
    private func gradientReady(_ index: Int) {
        guard syncEnabled else { return }
        if queueBackwardCallback(once: self, endOfBackward) && phase != .idle {
            // A reduction from an earlier backward that no step consumed: start afresh.
            finishStep()
        }
        guard overlap else { return }
        let bucket = buckets[bucketOf[index]]
        bucket.arrived += 1
        launchReadyBuckets()
    }

    /// The end of a backward pass that produced gradients: wait for the reductions. Unsharded,
    /// the gradients are then averaged and in place; sharded, only reduce-scattered, and they
    /// stay pending until `step(_:)` uses them or an optimizer's read completes them.
    private func backwardEnded() throws {
        if shardsOptimizerStep {
            try reduceBuckets()
            phase = .reduced
            for p in parameters { p.setPendingGradient(self) }
        } else {
            try synchronizeNow()
            phase = .synchronized
        }
    }

    /// Completes gradients left pending by a sharded backward (an optimizer is about to read
    /// them): allgathers the averages, as `synchronize()` does.
    public func completeGradients() throws {
        guard phase == .reduced else { return }
        try synchronize()
    }

    /// Starts buckets strictly in index order, so every rank issues the same collectives in the
    /// same order even when different parameters are unused on different ranks.
    private func launchReadyBuckets(all: Bool = false) {
        while nextToLaunch < buckets.count {
            let b = buckets[nextToLaunch]
            guard all || b.arrived >= b.members.count else { return }
            try? launch(b)  // an asynchronous start cannot fail; errors surface in wait()
            nextToLaunch += 1
        }
    }

    /// Starts the bucket's allreduce, or with `now` runs it on this thread and returns when done.
    private func launch(_ b: GradientBucket, now: Bool = false) throws {
        guard now, let observer, let index = buckets.firstIndex(where: { $0 === b }) else { return try packAndReduce(b, now: now) }
        let start = monotonicNanoseconds()
        try packAndReduce(b, now: true)
        observer(.bucket(index: index, start: start, end: monotonicNanoseconds(), overlapped: false))
    }

    private func packAndReduce(_ b: GradientBucket, now: Bool) throws {
        switch b.buffer.dtype {
        case .float32: try pack(b, Float.self, now: now)
        case .float64: try pack(b, Double.self, now: now)
        case .int64: stop("integer parameters cannot be trained")
        }
    }

    private func pack<T: FloatElement>(_ b: GradientBucket, _ type: T.Type, now: Bool = false) throws {
        let buffer = b.buffer.mutablePointer(T.self)
        for (k, m) in b.members.enumerated() {
            let p = parameters[m], slot = buffer + b.offsets[k]
            if let g = p.grad {
                // Usually the gradient already lives in its slot; copy only one set by hand.
                if g !== b.slots[k] {
                    let from = g.mutablePointer(T.self), scale = T(prescaled ? 1 / Double(communicator.worldSize) : 1)
                    for i in 0..<p.count { slot[i] = from[i] * scale }
                }
                buffer[b.flagOffset + k] = 1
            } else {
                slot.update(repeating: 0, count: p.count)
                buffer[b.flagOffset + k] = 0
            }
        }
        let op: ReduceOp = prescaled ? .sum : .average
        if shardsOptimizerStep {
            // The flags stay behind (only one rank would get them); `reduceFlags` sums them all at once.
            if now {
                try communicator.reduceScatter(buffer, count: b.flagOffset, op: op)
            } else {
                b.request = communicator.reduceScatterAsync(buffer, count: b.flagOffset, op: op)
            }
            return
        }
        // The flags go along: their sum or mean is positive when any rank had a gradient.
        if now {
            try communicator.allreduce(buffer, count: b.buffer.count, op: op)
        } else {
            b.request = communicator.allreduceAsync(buffer, count: b.buffer.count, op: op)
        }
    }

    /// Waits for every bucket and replaces each gradient by its average over ranks. A parameter
    /// that had no gradient on any rank keeps `grad == nil` (the optimizer skips it, as it would
    /// in a single process). Backward does this by itself when it ends, so this only returns
    /// then; call it after setting gradients by hand, or to complete a sharded backward's
    /// gradients (it allgathers the reduce-scattered averages).
    public func synchronize() throws {
        guard syncEnabled && communicator.worldSize > 1 else { return }
        switch phase {
        case .synchronized: finishStep()
        case .reduced:
            defer { finishStep() }
            try gatherReducedGradients()
            try stepEnded()
        case .idle: try synchronizeNow()
        }
    }

    /// Reduces every bucket (starting what backward did not) and writes the averages back.
    private func synchronizeNow() throws {
        defer { resetBuckets() }
        try reduceBuckets()
        try gatherReducedGradients()
        try stepEnded()
    }

    /// After `reduceBuckets`: every bucket whole on every rank (sharded: allgathered) and each
    /// gradient pointed at its average.
    private func gatherReducedGradients() throws {
        for b in buckets {
            if shardsOptimizerStep { try communicator.allgatherShards(b.buffer, count: b.flagOffset) }
            unpack(b)
        }
    }

    /// Leaves the phase of a step whose reductions have been used.
    func finishStep() {
        if phase == .reduced { for p in parameters { p.setPendingGradient(nil) } }
        phase = .idle
        resetBuckets()
    }

    /// Starts what backward has not started, and waits for every bucket's reduction (and, when
    /// sharded, for the flags saying which parameters had gradients).
    func reduceBuckets() throws {
        if !overlap {
            // Nothing to overlap with any more: reduce on this thread, sparing two thread
            // hand-offs per bucket (2% of a two-rank mlp step).
            while nextToLaunch < buckets.count {
                try launch(buckets[nextToLaunch], now: true)
                nextToLaunch += 1
            }
        }
        launchReadyBuckets(all: true)
        let waitStart = observer == nil ? 0 : monotonicNanoseconds()
        for b in buckets { try b.request?.wait() }
        if shardsOptimizerStep { try reduceFlags() }
        if let observer {
            observer(.wait(start: waitStart, end: monotonicNanoseconds()))
            for (i, b) in buckets.enumerated() {
                if let r = b.request, r.startedAt != 0 { observer(.bucket(index: i, start: r.startedAt, end: r.finishedAt, overlapped: true)) }
            }
        }
    }

    /// Tells the transport tuner (if any) that a step's reductions are over.
    func stepEnded() throws { try tuner?.stepEnded() }

    /// The latest transport trial, when the transport is being tuned: median step seconds over
    /// MPI and over shared memory, and whether shared memory was chosen.
    public var lastTransportTrial: (mpi: Double, sharedMemory: Double, chose: Bool)? { tuner?.lastTrial }

    /// How many transport trials there have been and how many chose shared memory (nil when the
    /// transport is not tuned).
    public var transportTrials: (trials: Int, sharedMemory: Int)? { tuner.map { ($0.trials, $0.sharedMemoryWins) } }

    func resetBuckets() {
        nextToLaunch = 0
        for b in buckets { b.arrived = 0; b.request = nil }
    }

    /// Sums every bucket's "had a gradient" flags over the ranks in one small allreduce.
    private func reduceFlags() throws {
        let flags = buckets.map { $0.buffer.flatView(offset: $0.flagOffset, shape: [$0.members.count]) }
        let total = try communicator.allreduceSum(flags.flatMap(\.doubleScalars))
        var next = 0
        for f in flags {
            f.copy_(Tensor(total[next..<(next + f.count)].map { $0 }, shape: [f.count], dtype: f.dtype))
            next += f.count
        }
    }

    /// Whether any rank had a gradient for member `k` of `b` (after the reduction).
    func hadGradient(_ b: GradientBucket, _ k: Int) -> Bool {
        b.buffer.dtype == .float64 ? b.buffer.mutablePointer(Double.self)[b.flagOffset + k] > 0
            : b.buffer.mutablePointer(Float.self)[b.flagOffset + k] > 0
    }

    private func unpack(_ b: GradientBucket) {
        // The bucket holds the average now (a sum of prescaled gradients, or averaged by the
        // communicator); point each gradient at its slot.
        for (k, m) in b.members.enumerated() {
            parameters[m].grad = hadGradient(b, k) ? b.slots[k] : nil
        }
    }

    /// Number of buckets and their sizes in elements (for logs and tests).
    public var bucketSizes: [Int] { buckets.map { $0.flagOffset } }
}
