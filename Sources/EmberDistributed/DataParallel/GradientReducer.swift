@_spi(Checks) import Ember
import Foundation

/// The gradients' way from backward to the optimizer: the buckets (`BucketAssignment`), their
/// state through a step, packing and launching their collectives, and writing the averages back.
/// `DataParallel` owns one and tells it when each gradient is ready; both steps use it: the
/// unsharded one (`synchronize()` leaves every `.grad` the average) and the sharded one
/// (`step(_:)` in ShardedStep.swift: reduce-scatter, update a shard, allgather).
///
/// A step's phases: `idle` (nothing in flight); buckets launch as their last gradient arrives
/// (overlapped with backward) or all at backward's end; backward's end waits for them and leaves
/// `synchronized` (averages in place) or, sharded, `reduced` (each rank's shard averaged, the
/// gradients pending until the step or an optimizer's read completes them).
public final class GradientReducer: PendingGradient {
    let communicator: Communicator
    let parameters: [Tensor]
    public let buckets: [GradientBucket]
    /// Each parameter's bucket and its position in it.
    let place: [(bucket: Int, member: Int)]
    let overlap: Bool
    let shardsOptimizerStep: Bool
    /// `.bfloat16`: float32 buckets travel in bfloat16 (BFloat16Reduction.swift).
    let reduceDtype: DType
    /// Whether gradients are born divided by the world size (power-of-two worlds), so the
    /// collective's sum is the average.
    private(set) var prescaled = false
    enum Phase { case idle, reduced, synchronized }
    private(set) var phase = Phase.idle
    private var nextToLaunch = 0
    /// Picks the transport for the buckets when the communicator leaves it open.
    var tuner: TransportTuner?
    /// Told when each bucket's reduction ran and how long backward's end waited for them.
    var observer: ((DataParallel.ReductionEvent) -> Void)?

    init(parameters: [Tensor], communicator: Communicator, capacityBytes: Int, overlap: Bool, sharded: Bool,
         reduceDtype: DType = .float32) throws {
        guard reduceDtype == .float32 || reduceDtype == .bfloat16 else {
            throw CommunicatorError.mismatch("gradients can be reduced in float32 or bfloat16, not \(reduceDtype)")
        }
        guard !(sharded && reduceDtype == .bfloat16) else {
            throw CommunicatorError.mismatch("a sharded optimizer step reduces gradients in float32; bfloat16 gradients need shardOptimizerStep: false (the trainer's --no-shard-optimizer)")
        }
        self.parameters = parameters
        self.communicator = communicator
        self.overlap = overlap
        self.reduceDtype = reduceDtype
        shardsOptimizerStep = sharded
        let groups = BucketAssignment.assign(parameters.map { (bytes: $0.count * $0.dtype.byteSize, dtype: $0.dtype) },
                                             capacityBytes: capacityBytes)
        buckets = try groups.map { try GradientBucket(members: $0, parameters: parameters, communicator: communicator) }
        var place = [(bucket: Int, member: Int)](repeating: (0, 0), count: parameters.count)
        for (bi, b) in buckets.enumerated() { for (k, m) in b.members.enumerated() { place[m] = (bi, k) } }
        self.place = place
        guard communicator.worldSize > 1 else { return }
        if reduceDtype == .bfloat16 {
            for b in buckets where b.buffer.dtype == .float32 { b.travelling = Tensor.zeros([b.buffer.count], dtype: .bfloat16) }
        }
        bornInBuckets()
        if sharded { parametersInBuckets() }
    }

    /// Gradients are born in their bucket ("gradient as bucket view"): no packing copy. For a
    /// power-of-two world they are born divided by it, so the allreduce's sum is the average
    /// with no pass of its own (Horovod's prescaling; exact for such a world).
    private func bornInBuckets() {
        let n = communicator.worldSize
        prescaled = n & (n - 1) == 0
        for b in buckets {
            for (m, slot) in zip(b.members, b.slots) {
                parameters[m].setGradientDestination(slot, scale: prescaled ? 1 / Double(n) : 1)
            }
        }
    }

    /// Sharded: parameters live in their buckets' `values`, so updated shards allgather in place.
    private func parametersInBuckets() {
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

    /// Gives the gradients back their own memory (only those still born here: another reducer
    /// may have taken the model over by now).
    func release() {
        for b in buckets {
            for (m, slot) in zip(b.members, b.slots) where parameters[m].gradientBuffer === slot {
                parameters[m].setGradientDestination(nil)
            }
        }
    }

    // MARK: A step's reduction

    /// Parameter `index`'s gradient is complete: starts its bucket when the bucket is full.
    /// The first arrival of a backward that finds an unconsumed reduction starts afresh.
    func gradientReady(_ index: Int, firstOfBackward: Bool) {
        if firstOfBackward && phase != .idle { finishStep() }
        guard overlap else { return }
        buckets[place[index].bucket].arrived += 1
        launchReadyBuckets()
    }

    /// The end of a backward pass that produced gradients: wait for the reductions. Unsharded,
    /// the gradients are then averaged and in place; sharded, only reduce-scattered, and they
    /// stay pending until the step uses them or an optimizer's read completes them.
    func backwardEnded() throws {
        if shardsOptimizerStep {
            try reduceBuckets()
            phase = .reduced
            for p in parameters { p.setPendingGradient(self) }
        } else {
            try synchronizeNow()
            phase = .synchronized
        }
    }

    /// Completes gradients left pending by a sharded backward (an optimizer is about to read them).
    public func completeGradients() throws {
        guard phase == .reduced else { return }
        try synchronize()
    }

    /// Every gradient averaged and in place, whatever the phase (see `DataParallel.synchronize`).
    func synchronize() throws {
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

    private func resetBuckets() {
        nextToLaunch = 0
        for b in buckets { b.arrived = 0; b.request = nil }
    }

    // MARK: Launching and packing

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

    /// Starts the bucket's collective, or with `now` runs it on this thread and returns when done.
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
        case .int64, .bfloat16: stop("\(b.buffer.dtype) parameters cannot be trained (float32 or float64 only)")
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
        if let half = b.travelling {
            // In bfloat16: the flags (at most the world size) stay exact up to 256 ranks, and
            // stay positive beyond; `unpack` widens and averages.
            let bits = half.mutablePointer(UInt16.self)
            BFloat16.round(b.buffer.mutablePointer(Float.self), into: bits, count: b.buffer.count)
            b.request = communicator.allreduceBFloat16Async(bits, count: b.buffer.count)
            if now { try b.request?.wait() }
            return
        }
        if now {
            try communicator.allreduce(buffer, count: b.buffer.count, op: op)
        } else {
            b.request = communicator.allreduceAsync(buffer, count: b.buffer.count, op: op)
        }
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

    /// Points each gradient at its slot, which holds the average now (travelling in bfloat16:
    /// once widened back into the float32 bucket and, unless prescaled, divided by the world).
    private func unpack(_ b: GradientBucket) {
        if let half = b.travelling {
            BFloat16.widen(half.mutablePointer(UInt16.self), into: b.buffer.mutablePointer(Float.self), count: b.buffer.count,
                           scale: prescaled ? 1 : 1 / Float(communicator.worldSize))
        }
        for (k, m) in b.members.enumerated() {
            parameters[m].grad = hadGradient(b, k) ? b.slots[k] : nil
        }
    }
}
