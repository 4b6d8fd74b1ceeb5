import Ember

/// Gradients whose sum over micro-batches and ranks has the same bits on any world size:
/// DataParallel's deterministic switch (`ddp.deterministicGradients()`), and what
/// `trainer train --deterministic` runs.
///
/// Split a global batch into micro-batches computed the same way wherever they run (same shapes;
/// randomness seeded by the micro-batch's index, not the rank); run each of this rank's through
/// `microBatch(k) { … backward … }`; then `reduce(microBatches:)` leaves in every parameter's
/// `.grad` the mean over all micro-batches of all ranks, summed exactly: each micro-batch's
/// gradient is rounded onto a power-of-two grid fixed by the global largest magnitude (an
/// allreduce of maxima, which no order changes), and the grid values, integers in doubles below
/// 2^53, add exactly in any order (`FixedPointSum`).
///
/// ```swift
/// let exact = try ddp.deterministicGradients()
/// for k in myMicroBatches.indices {
///     try exact.microBatch(k) { lossOf(myMicroBatches[k]).backward() }
/// }
/// try exact.reduce(microBatches: allMicroBatchesOfTheStep)
/// optimizer.step()
/// ```
public final class DeterministicGradients {
    let comm: Communicator
    let params: [Tensor]
    let ddp: DataParallel?
    /// The accumulator: the communicator's reduction buffer (a shared segment on one node).
    let acc: Tensor
    let views: [Tensor]
    /// Where micro-batch k's gradient of parameter p is born (`slots[k][p]`), and where the mean
    /// lands: buffers made once, so a step allocates nothing.
    private var slots: [[Tensor]] = []
    private var filled = 0
    private let means: [Tensor]

    /// Reduces the float32 `params` over `communicator`'s ranks; `ddp` (if any) is kept from
    /// synchronising during micro-batches.
    public init(params: [Tensor], communicator: Communicator, dataParallel ddp: DataParallel? = nil) throws {
        guard params.allSatisfy({ $0.dtype == .float32 }) else {
            throw CommunicatorError.mismatch("deterministic gradients need float32 parameters")
        }
        self.comm = communicator
        self.params = params
        self.ddp = ddp
        let acc = try communicator.reductionBuffer(count: params.reduce(0) { $0 + $1.count }, dtype: .float64)
        var offset = 0
        views = params.map { p in
            defer { offset += p.count }
            return acc.flatView(offset: offset, shape: [p.count])
        }
        self.acc = acc
        means = params.map { Tensor.zeros($0.shape, dtype: $0.dtype) }
        // Integers in doubles sum exactly in any order: shared memory's order is as good as MPI's.
        if let selectable = communicator as? TransportSelecting, selectable.usesSharedMemory { selectable.transport = .sharedMemory }
    }

    /// Runs `body` (forward and backward of this rank's `k`-th micro-batch of the step, counted
    /// from 0) with every gradient born in that micro-batch's own buffer.
    public func microBatch<R>(_ k: Int, _ body: () throws -> R) rethrows -> R {
        while slots.count <= k { slots.append(params.map { Tensor.zeros($0.shape, dtype: $0.dtype) }) }
        for (p, slot) in zip(params, slots[k]) {
            p.grad = nil
            p.setGradientDestination(slot)
        }
        let result = try ddp.map { d in try d.noSync(body) } ?? body()
        for (i, p) in params.enumerated() {
            let g = p.grad
            p.grad = nil
            p.setGradientDestination(nil)
            if let g, g !== slots[k][i] { slots[k][i].copy_(g) } else if g == nil { slots[k][i].fill(0) }
        }
        filled = Swift.max(filled, k + 1)
        return result
    }

    /// The mean over `count` micro-batches (every rank's together) into each parameter's
    /// `.grad`: the same bits on every rank and on every world size. Collective.
    public func reduce(microBatches count: Int) throws {
        let mine = slots.prefix(filled)
        let largest = try comm.allreduceMax(params.indices.map { p in mine.reduce(0.0) { Swift.max($0, FixedPointSum.largestMagnitude($1[p])) } })
        let scales = largest.map { FixedPointSum.scale(largest: $0, terms: count) }
        for p in params.indices {
            if mine.isEmpty { views[p].fill(0) }
            for (k, micro) in mine.enumerated() { FixedPointSum.accumulate(micro[p], into: views[p], scale: scales[p], first: k == 0) }
        }
        try comm.allreduce(acc, op: .sum)
        for (p, t) in params.enumerated() {
            FixedPointSum.unscale(views[p], into: means[p], factor: 1 / (scales[p] * Double(count)))
            t.grad = means[p]
        }
        filled = 0
    }
}

extension DataParallel {
    /// The deterministic switch: micro-batch gradients summed exactly (`DeterministicGradients`)
    /// instead of the buckets. Gradients stop being born in the (prescaled) buckets.
    public func deterministicGradients() throws -> DeterministicGradients {
        let params = module.parameters()
        for p in params { p.setGradientDestination(nil) }
        return try DeterministicGradients(params: params, communicator: communicator, dataParallel: self)
    }
}
