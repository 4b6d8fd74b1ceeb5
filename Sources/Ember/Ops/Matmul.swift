/// Matrix products through BLAS, with PyTorch's rules for vectors and broadcast batches.
extension Tensor {
    /// `self @ other`: dot product for two vectors, matrix-vector, matrix-matrix, and batched
    /// products whose batch dimensions broadcast.
    public func matmul(_ other: Tensor) -> Tensor {
        _ = check { try Shapes.matmul(shape, other.shape) }
        let a = rank == 1 ? unsqueeze(0) : self
        let b = other.rank == 1 ? other.unsqueeze(1) : other
        var out = a.mm(b, transposeA: false, transposeB: false)
        if rank == 1 && other.rank == 1 { return out.reshape([]) }
        if other.rank == 1 { out = out.squeeze(-1) }
        if rank == 1 { out = out.squeeze(-2) }
        return out
    }

    /// `op(self) @ op(other)` for tensors of rank ≥ 2, where `op` transposes the last two
    /// dimensions when asked. The transpose is a BLAS flag: nothing is copied.
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        require(rank >= 2 && other.rank >= 2,
                     "matmul with transpose flags needs tensors of rank ≥ 2, got shapes \(shape) and \(other.shape)")
        return mm(other, transposeA: transposeA, transposeB: transposeB)
    }

    /// The core product on rank ≥ 2 operands; gradients are products again (with flipped flags),
    /// so they can be differentiated a second time.
    /// With `into` (a buffer the engine offered), the product times its scale is written there
    /// when the shapes fit.
    /// Under bf16 autocast each operand is rounded to bfloat16 once here, and the rounded copies
    /// (and the incoming gradient's, rounded once) serve backward's two products too; `roundedA`
    /// and `roundedB` pass in copies a caller already has.
    func mm(_ other: Tensor, transposeA ta: Bool, transposeB tb: Bool, into destination: GradientOutput? = nil,
            roundedA: Tensor? = nil, roundedB: Tensor? = nil) -> Tensor {
        let dtype = Tensor.promoted(self.dtype, other.dtype)
        require(dtype.isFloatingPoint, "matmul needs floating-point tensors, got \(self.dtype) and \(other.dtype)")
        var a = to(dtype), b = other.to(dtype)
        let (m, ka) = ta ? (a.shape[a.rank - 1], a.shape[a.rank - 2]) : (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (kb, n) = tb ? (b.shape[b.rank - 1], b.shape[b.rank - 2]) : (b.shape[b.rank - 2], b.shape[b.rank - 1])
        require(ka == kb, "matmul shapes \(shape)\(ta ? "ᵀ" : "") and \(other.shape)\(tb ? "ᵀ" : "") do not match: \(ka) vs \(kb)")

        // A batch of rows times one matrix is a single large product: fold the batch into rows.
        if a.rank > 2 && b.rank == 2 && !ta {
            let rows = a.reshape([-1, ka]).mm(b, transposeA: false, transposeB: tb, roundedA: roundedA, roundedB: roundedB)
            return rows.reshape(Array(a.shape.dropLast()) + [n])
        }
        let batchShape = check { try Shapes.broadcast(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2))) }
        let batch = batchShape.reduce(1, *)
        // A 2-D operand is reused for every batch (stride 0); a batched one is expanded if needed.
        if a.rank > 2 || batch > 1 { a = a.rank == 2 ? a : a.expand(batchShape + Array(a.shape.suffix(2))) }
        if b.rank > 2 || batch > 1 { b = b.rank == 2 ? b : b.expand(batchShape + Array(b.shape.suffix(2))) }
        let target = destination.flatMap { $0.buffer.shape == batchShape + [m, n] && $0.buffer.dtype == dtype ? $0 : nil }
        let out = target?.buffer ?? Tensor(uninitializedShape: batchShape + [m, n], dtype: dtype)
        let ra = Tensor.rounded(a, given: roundedA), rb = Tensor.rounded(b, given: roundedB)
        Kernels.gemm(a, b, into: out, batch: batch, m: m, n: n, k: ka, transA: ta, transB: tb, strideA: a.rank == 2 ? 0 : m * ka,
                     strideB: b.rank == 2 ? 0 : ka * n, alpha: target?.scale ?? 1, roundedA: ra, roundedB: rb)
        // Each rounded copy is kept only for the gradient that needs it.
        let (keptA, keptB) = (b.requiresGrad ? ra : nil, a.requiresGrad ? rb : nil)
        return out.recordOp("MmBackward", [a, b], writingInto: { g, outputs in
            let rg = Kernels.roundedForProducts(g)
            let ga = a.requiresGrad
                ? (ta ? b.mm(g, transposeA: tb, transposeB: true, roundedA: keptB, roundedB: rg)
                      : g.mm(b, transposeA: false, transposeB: !tb, roundedA: rg, roundedB: keptB)).sumTo(a.shape)
                : nil
            // A 2-D weight's gradient is one product: it can go straight where the engine asks.
            let into = b.rank == 2 && batch == 1 ? outputs[1] : nil
            let gb = b.requiresGrad
                ? (tb ? g.mm(a, transposeA: true, transposeB: ta, into: into, roundedA: rg, roundedB: keptA)
                      : a.mm(g, transposeA: !ta, transposeB: false, into: into, roundedA: keptA, roundedB: rg)).sumTo(b.shape)
                : nil
            return [ga, gb]
        })
    }

    /// `t`'s bfloat16 copy for the products: the one given when it fits, else rounded now (nil
    /// when the products do not run in bfloat16).
    private static func rounded(_ t: Tensor, given: Tensor?) -> Tensor? {
        if let given, given.count == t.count { return given }
        return Kernels.roundedForProducts(t)
    }

    /// Dot product of two vectors.
    public func dot(_ other: Tensor) -> Tensor {
        require(rank == 1 && other.rank == 1, "dot needs two vectors, got shapes \(shape) and \(other.shape)")
        return matmul(other)
    }
}
