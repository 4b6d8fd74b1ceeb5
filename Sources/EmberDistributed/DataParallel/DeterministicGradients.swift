@_spi(Checks) import Ember

/// Gradients whose sum over micro-batches and ranks has the same bits on any world size:
/// DataParallel's deterministic switch (`ddp.deterministicGradients()`), and what
/// `trainer train --deterministic` runs.
///
/// Split a global batch into micro-batches computed the same way wherever they run (same shapes;
/// randomness seeded by the micro-batch's index, not the rank), the same number on every rank,
/// rank r holding the r-th contiguous run of them; run each of this rank's through
/// `microBatch(k) { … backward … }`; then `reduce(microBatches:)` leaves in every parameter's
/// `.grad` the mean over all micro-batches of all ranks, added in micro-batch order
/// (`Communicator.orderedSum`): the bits of one process accumulating the micro-batches one after
/// another, on every world size.
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
    private let total: Int
    /// Micro-batch k's gradients, all parameters in one flat reduction buffer (shared memory
    /// on one node, where the sum reads them in place), and its per-parameter views, where the
    /// gradients are born: made once, so a step allocates nothing.
    private var slots: [(flat: Tensor, views: [Tensor])] = []
    private var filled = 0
    /// Where the mean lands; each parameter's `.grad` is a view of it.
    private let mean: (flat: Tensor, views: [Tensor])

    /// Reduces the float32 `params` over `communicator`'s ranks; `ddp` (if any) is kept from
    /// synchronising during micro-batches.
    public init(params: [Tensor], communicator: Communicator, dataParallel ddp: DataParallel? = nil) throws {
        guard params.allSatisfy({ $0.dtype == .float32 }) else {
            throw CommunicatorError.mismatch("deterministic gradients need float32 parameters")
        }
        self.comm = communicator
        self.params = params
        self.ddp = ddp
        total = params.reduce(0) { $0 + $1.count }
        mean = try Self.flatBuffer(params, total: total, communicator)
        // The order of the sum is fixed whatever the transport; shared memory reads in place.
        if let selectable = communicator as? TransportSelecting, selectable.usesSharedMemory { selectable.transport = .sharedMemory }
    }

    private static func flatBuffer(_ params: [Tensor], total: Int, _ comm: Communicator) throws -> (flat: Tensor, views: [Tensor]) {
        let flat = try comm.reductionBuffer(count: total, dtype: .float32)
        var offset = 0
        return (flat, params.map { p in
            defer { offset += p.count }
            return flat.flatView(offset: offset, shape: p.shape)
        })
    }

    /// Runs `body` (forward and backward of this rank's `k`-th micro-batch of the step, counted
    /// from 0) with every gradient born in that micro-batch's own buffer. The first use of a new
    /// `k` allocates its buffer, collectively: every rank runs the same micro-batch indices.
    public func microBatch<R>(_ k: Int, _ body: () throws -> R) throws -> R {
        while slots.count <= k { slots.append(try Self.flatBuffer(params, total: total, comm)) }
        for (p, slot) in zip(params, slots[k].views) {
            p.grad = nil
            p.setGradientDestination(slot)
        }
        let result = try ddp.map { d in try d.noSync(body) } ?? body()
        for (i, p) in params.enumerated() {
            let g = p.grad, slot = slots[k].views[i]
            p.grad = nil
            p.setGradientDestination(nil)
            if let g, g !== slot { slot.copy_(g) } else if g == nil { slot.fill(0) }
        }
        filled = Swift.max(filled, k + 1)
        return result
    }

    /// The mean over `count` micro-batches (every rank's together; `count` = this rank's
    /// micro-batches × the world size) into each parameter's `.grad`: the same bits on every
    /// rank and on every world size. Collective.
    public func reduce(microBatches count: Int) throws {
        guard filled * comm.worldSize == count else {
            throw CommunicatorError.mismatch("deterministic gradients: reduce(microBatches: \(count)) on \(comm.worldSize) ranks needs \(count / comm.worldSize) micro-batches on every rank (the same number on each), but rank \(comm.rank) ran \(filled)")
        }
        try comm.orderedSum(slots.prefix(filled).map { $0.flat.mutablePointer(Float.self) }, count: total, into: mean.flat.mutablePointer(Float.self),
                            dividedBy: count)
        for (p, t) in params.enumerated() { t.grad = mean.views[p] }
        filled = 0
    }
}

extension DataParallel {
    /// The deterministic switch: micro-batch gradients added in micro-batch order (`DeterministicGradients`)
    /// instead of the buckets. Gradients stop being born in the (prescaled) buckets.
    public func deterministicGradients() throws -> DeterministicGradients {
        let params = module.parameters()
        for p in params { p.setGradientDestination(nil) }
        return try DeterministicGradients(params: params, communicator: communicator, dataParallel: self)
    }
}
