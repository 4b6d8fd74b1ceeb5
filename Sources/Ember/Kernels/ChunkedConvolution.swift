import Synchronization

/// Convolution as im2col + GEMM, one cache-sized chunk of samples at a time.
///
/// Unfolding a whole batch at once writes a column matrix of several megabytes (LeNet's first
/// layer: 25 × 50,176 floats) that the matrix product then streams back from memory, and backward
/// streams it a third time. Here a few samples are unfolded into a small reused buffer that stays
/// in L2 while the product reads it; backward unfolds them again (cheaper than keeping the
/// columns), and results go straight to `[N, C, H, W]` with the bias added on the way.
struct ConvPlan {
    let geometry: ConvGeometry
    let batch: Int, outChannels: Int, groups: Int
    /// Samples unfolded at a time.
    let chunk: Int

    /// Bytes of column matrix per chunk: large enough that each product is worth a BLAS call,
    /// small enough to stay in a core's L2 cache alongside the product's other operands.
    /// (Tests lower it to make every sample its own chunk.)
    static var columnBudget: Int {
        get { tuning.columnBudget.load(ordering: .relaxed) }
        set { tuning.columnBudget.store(newValue, ordering: .relaxed) }
    }

    init(_ g: ConvGeometry, batch: Int, outChannels: Int, groups: Int, elementSize: Int) {
        geometry = g
        self.batch = batch
        self.outChannels = outChannels
        self.groups = groups
        let perSample = g.patchSize * g.outHeight * g.outWidth * elementSize
        chunk = Swift.max(1, Swift.min(batch, ConvPlan.columnBudget / Swift.max(perSample, 1)))
    }

    var positions: Int { geometry.outHeight * geometry.outWidth }
    var inputPlane: Int { geometry.channels * geometry.height * geometry.width }
    var groupRows: Int { geometry.patchSize / groups }
    var groupOut: Int { outChannels / groups }

    var chunkCount: Int { (batch + chunk - 1) / chunk }

    /// Multiply-adds of one pass (forward, or each product of backward).
    var multiplyAdds: Int { batch * outChannels * positions * groupRows }

    /// Workers for `threads` product threads. A large convolution spreads its chunks over the
    /// threads, each multiplying on one (BLAS threads would split every small product finely and
    /// spin between them: two threads ran resnet-small at 0.6× one). A small one, or a single
    /// chunk, runs in order and leaves the threads to BLAS: handing out chunks costs more than
    /// they take (LeNet's layers, 7 and 15 million multiply-adds; resnet-small's, 29 to 58 million).
    func workers(threads: Int) -> Int {
        guard threads > 1, multiplyAdds >= ConvPlan.parallelWork else { return 1 }
        return Swift.min(threads, chunkCount)
    }

    /// Multiply-adds from which chunks are spread over threads.
    static var parallelWork: Int {
        get { tuning.parallelWork.load(ordering: .relaxed) }
        set { tuning.parallelWork.store(newValue, ordering: .relaxed) }
    }

    /// The two thresholds above, process-wide; only tests change them.
    private static let tuning = Tuning()
    private final class Tuning: Sendable {
        let columnBudget = Atomic<Int>(192 * 1024), parallelWork = Atomic<Int>(20_000_000)
    }

    /// Runs `body(worker, first sample, samples)` for every chunk: worker `w` of `workers` takes
    /// chunks w, w + workers, ... in order, so each worker's share (and any sum it keeps) is the
    /// same from run to run, whichever thread runs it (`Kernels.team`).
    func forEachChunk(workers: Int, _ body: (Int, Int, Int) -> Void) {
        Kernels.team(workers) { w in
            for c in stride(from: w, to: chunkCount, by: workers) { body(w, c * chunk, Swift.min(chunk, batch - c * chunk)) }
        }
    }
}

extension Kernels {
    /// `out[N, outC, oh, ow] = weight ⋆ x + bias` (cross-correlation, grouped).
    static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, _ plan: ConvPlan) -> Tensor {
        let out = Tensor(uninitializedShape: [plan.batch, plan.outChannels, plan.geometry.outHeight, plan.geometry.outWidth], dtype: x.dtype)
        let workers = plan.workers(threads: numThreads)
        func run<T: FloatElement>(_ type: T.Type) {
            let l = plan.positions, oc = plan.outChannels, rows = plan.geometry.patchSize
            let scratch = Tensor(uninitializedShape: [workers * (rows + oc) * plan.chunk * l], dtype: x.dtype)
            defer { withExtendedLifetime(scratch) {} }
            let src = x.pointer(T.self), w = weight.pointer(T.self), dst = out.pointer(T.self)
            let b = bias?.pointer(T.self)
            plan.forEachChunk(workers: workers) { worker, b0, nb in
                let width = nb * l
                let cols = scratch.pointer(T.self) + worker * (rows + oc) * plan.chunk * l
                let product = cols + rows * plan.chunk * l
                im2col(src + b0 * plan.inputPlane, samples: nb, plan.geometry, into: cols)
                for grp in 0..<plan.groups {
                    gemm(false, false, m: plan.groupOut, n: width, k: plan.groupRows,
                         w + grp * plan.groupOut * plan.groupRows, lda: plan.groupRows,
                         cols + grp * plan.groupRows * width, ldb: width,
                         beta: 0, product + grp * plan.groupOut * width, ldc: width)
                }
                // [outC, nb·L] → nb samples of [outC, L], adding the bias.
                for s in 0..<nb {
                    for c in 0..<oc {
                        let from = product + c * width + s * l, to = dst + ((b0 + s) * oc + c) * l
                        let shift = b?[c] ?? 0
                        for i in 0..<l { to[i] = from[i] + shift }
                    }
                }
            }
        }
        x.dtype == .float64 ? run(Double.self) : run(Float.self)
        return out
    }

    /// Gradients of `conv2d` from the gradient of its output `[N, outC, oh, ow]`; each is computed
    /// only when asked for. `weightInto` (a buffer the engine offered) receives the weight's
    /// gradient times its scale, sparing a copy.
    static func conv2dBackward(_ grad: Tensor, _ x: Tensor, weight: Tensor, _ plan: ConvPlan,
                               input needInput: Bool, weight needWeight: Bool, bias needBias: Bool,
                               weightInto: GradientOutput? = nil)
        -> (input: Tensor?, weight: Tensor?, bias: Tensor?) {
        let dx = needInput ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let into = weightInto.flatMap { $0.buffer.shape == weight.shape && $0.buffer.dtype == x.dtype ? $0 : nil }
        let dw = needWeight ? into?.buffer ?? Tensor(uninitializedShape: weight.shape, dtype: x.dtype) : nil
        let dwScale = into?.scale ?? 1
        let workers = plan.workers(threads: numThreads)
        // Each worker sums its chunks' weight and bias gradients on its own (worker 0 straight
        // into the result); the partial sums are added in worker order at the end. Zeroed: a
        // worker may get no chunk (or the batch be empty).
        let partialWeights = needWeight && workers > 1 ? zeroed([workers - 1, weight.count], dtype: x.dtype) : nil
        if let dw { dw.dataPointer.initializeMemory(as: UInt8.self, repeating: 0, count: dw.count * dw.dtype.byteSize) }
        let biasSums = needBias ? zeroed([workers, plan.outChannels], dtype: x.dtype) : nil
        func run<T: FloatElement>(_ type: T.Type) {
            let l = plan.positions, oc = plan.outChannels, rows = plan.geometry.patchSize
            let scratch = Tensor(uninitializedShape: [workers * (rows + oc) * plan.chunk * l], dtype: x.dtype)
            defer { withExtendedLifetime((scratch, partialWeights)) {} }
            let src = x.pointer(T.self), w = weight.pointer(T.self), g = grad.pointer(T.self)
            plan.forEachChunk(workers: workers) { worker, b0, nb in
                let cols = scratch.pointer(T.self) + worker * (rows + oc) * plan.chunk * l
                let gathered = cols + rows * plan.chunk * l
                plan.gatherGradient(g, from: b0, samples: nb, into: gathered, biasSums: biasSums.map { $0.pointer(T.self) + worker * oc })
                if let dw {
                    let into = worker == 0 ? dw.pointer(T.self) : partialWeights!.pointer(T.self) + (worker - 1) * dw.count
                    im2col(src + b0 * plan.inputPlane, samples: nb, plan.geometry, into: cols)
                    plan.addWeightGradient(gathered, cols, samples: nb, scale: T(dwScale), into: into)
                }
                if let dx { plan.inputGradient(gathered, weight: w, samples: nb, cols: cols, into: dx.pointer(T.self) + b0 * plan.inputPlane) }
            }
            if let dw, let partialWeights {
                for k in 0..<(workers - 1) { axpy(1, partialWeights.pointer(T.self) + k * dw.count, dw.pointer(T.self), dw.count) }
            }
        }
        x.dtype == .float64 ? run(Double.self) : run(Float.self)
        let db = biasSums.map { $0.sum(dim: 0) }
        return (dx, dw, db)
    }
}

extension ConvPlan {
    /// `samples` samples of the output gradient `[outC, L]` from sample `first` on, gathered to
    /// `[outC, samples·L]` (the layout the products want); each channel's sum added to `biasSums`.
    fileprivate func gatherGradient<T: FloatElement>(_ g: UnsafePointer<T>, from first: Int, samples nb: Int, into gathered: UnsafeMutablePointer<T>,
                                                     biasSums: UnsafeMutablePointer<T>?) {
        let (l, oc, width) = (positions, outChannels, nb * positions)
        for s in 0..<nb {
            for c in 0..<oc {
                let from = g + ((first + s) * oc + c) * l, to = gathered + c * width + s * l
                for i in 0..<l { to[i] = from[i] }
                if let biasSums { biasSums[c] += Kernels.sumContiguous(from, l) }
            }
        }
    }

    /// `into += scale · gathered colsᵀ` per group: the chunk's part of the weight's gradient.
    fileprivate func addWeightGradient<T: FloatElement>(_ gathered: UnsafePointer<T>, _ cols: UnsafePointer<T>, samples nb: Int, scale: T,
                                                        into: UnsafeMutablePointer<T>) {
        let width = nb * positions
        for grp in 0..<groups {
            Kernels.gemm(false, true, m: groupOut, n: groupRows, k: width, alpha: scale, gathered + grp * groupOut * width, lda: width,
                         cols + grp * groupRows * width, ldb: width, beta: 1, into + grp * groupOut * groupRows, ldc: groupRows)
        }
    }

    /// The chunk's input gradient: `weightᵀ gathered` per group into the columns `cols`, folded
    /// back onto the images `into` (zeroed first).
    fileprivate func inputGradient<T: FloatElement>(_ gathered: UnsafePointer<T>, weight w: UnsafePointer<T>, samples nb: Int,
                                                    cols: UnsafeMutablePointer<T>, into images: UnsafeMutablePointer<T>) {
        let width = nb * positions
        for grp in 0..<groups {
            Kernels.gemm(true, false, m: groupRows, n: width, k: groupOut, w + grp * groupOut * groupRows, lda: groupRows,
                         gathered + grp * groupOut * width, ldb: width, beta: 0, cols + grp * groupRows * width, ldc: width)
        }
        images.update(repeating: 0, count: nb * inputPlane)
        Kernels.col2imAdd(cols, samples: nb, geometry, into: images)
    }
}
