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
    nonisolated(unsafe) static var columnBudget = 192 * 1024

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

    /// Visits the batch chunk by chunk: (first sample, samples in this chunk).
    func forEachChunk(_ body: (Int, Int) -> Void) {
        var b0 = 0
        while b0 < batch {
            body(b0, Swift.min(chunk, batch - b0))
            b0 += chunk
        }
    }
}

extension Kernels {
    /// `out[N, outC, oh, ow] = weight ⋆ x + bias` (cross-correlation, grouped).
    static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, _ plan: ConvPlan) -> Tensor {
        let out = Tensor(uninitializedShape: [plan.batch, plan.outChannels, plan.geometry.outHeight, plan.geometry.outWidth], dtype: x.dtype)
        func run<T: FloatElement>(_ type: T.Type) {
            let l = plan.positions, oc = plan.outChannels
            let scratch = Tensor(uninitializedShape: [(plan.geometry.patchSize + oc) * plan.chunk * l], dtype: x.dtype)
            defer { withExtendedLifetime(scratch) {} }
            let cols = scratch.pointer(T.self), product = cols + plan.geometry.patchSize * plan.chunk * l
            let src = x.pointer(T.self), w = weight.pointer(T.self), dst = out.pointer(T.self)
            let b = bias?.pointer(T.self)
            plan.forEachChunk { b0, nb in
                let width = nb * l
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
    /// only when asked for.
    static func conv2dBackward(_ grad: Tensor, _ x: Tensor, weight: Tensor, _ plan: ConvPlan,
                               input needInput: Bool, weight needWeight: Bool, bias needBias: Bool)
        -> (input: Tensor?, weight: Tensor?, bias: Tensor?) {
        let dx = needInput ? Tensor(uninitializedShape: x.shape, dtype: x.dtype) : nil
        let claimed = needWeight ? weight.claimGradientSlot() : nil
        let dw = needWeight ? claimed?.slot ?? Tensor(uninitializedShape: weight.shape, dtype: x.dtype) : nil
        let dwScale = claimed?.scale ?? 1
        // An empty batch has no chunks to sum over.
        if plan.batch == 0, let dw { dw.dataPointer.initializeMemory(as: UInt8.self, repeating: 0, count: dw.count * dw.dtype.byteSize) }
        let db = needBias ? zeroed([plan.outChannels], dtype: x.dtype) : nil
        func run<T: FloatElement>(_ type: T.Type) {
            let l = plan.positions, oc = plan.outChannels, rows = plan.geometry.patchSize
            let scratch = Tensor(uninitializedShape: [(rows + oc) * plan.chunk * l], dtype: x.dtype)
            defer { withExtendedLifetime(scratch) {} }
            let cols = scratch.pointer(T.self), gathered = cols + rows * plan.chunk * l
            let src = x.pointer(T.self), w = weight.pointer(T.self), g = grad.pointer(T.self)
            plan.forEachChunk { b0, nb in
                let width = nb * l
                // nb samples of [outC, L] → [outC, nb·L], the layout the products want.
                for s in 0..<nb {
                    for c in 0..<oc {
                        let from = g + ((b0 + s) * oc + c) * l, to = gathered + c * width + s * l
                        for i in 0..<l { to[i] = from[i] }
                        if let db { db.pointer(T.self)[c] += sumContiguous(from, l) }
                    }
                }
                if let dw {
                    im2col(src + b0 * plan.inputPlane, samples: nb, plan.geometry, into: cols)
                    for grp in 0..<plan.groups {
                        gemm(false, true, m: plan.groupOut, n: plan.groupRows, k: width, alpha: T(dwScale),
                             gathered + grp * plan.groupOut * width, lda: width,
                             cols + grp * plan.groupRows * width, ldb: width,
                             beta: b0 == 0 ? 0 : 1, dw.pointer(T.self) + grp * plan.groupOut * plan.groupRows, ldc: plan.groupRows)
                    }
                }
                if let dx {
                    for grp in 0..<plan.groups {
                        gemm(true, false, m: plan.groupRows, n: width, k: plan.groupOut,
                             w + grp * plan.groupOut * plan.groupRows, lda: plan.groupRows,
                             gathered + grp * plan.groupOut * width, ldb: width,
                             beta: 0, cols + grp * plan.groupRows * width, ldc: width)
                    }
                    let images = dx.pointer(T.self) + b0 * plan.inputPlane
                    images.update(repeating: 0, count: nb * plan.inputPlane)
                    col2imAdd(cols, samples: nb, plan.geometry, into: images)
                }
            }
        }
        x.dtype == .float64 ? run(Double.self) : run(Float.self)
        return (dx, dw, db)
    }
}
