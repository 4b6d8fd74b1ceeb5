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
    /// Under bf16 autocast a trained 2-D weight (a leaf that requires grad) as `other` is rounded
    /// once here and the rounded copy serves the backward's product with it too (`roundedB`).
    func mm(_ other: Tensor, transposeA ta: Bool, transposeB tb: Bool, into destination: GradientOutput? = nil,
            roundedB: Tensor? = nil) -> Tensor {
        let dtype = Tensor.promoted(self.dtype, other.dtype)
        require(dtype.isFloatingPoint, "matmul needs floating-point tensors, got \(self.dtype) and \(other.dtype)")
        var a = to(dtype), b = other.to(dtype)
        let (m, ka) = ta ? (a.shape[a.rank - 1], a.shape[a.rank - 2]) : (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (kb, n) = tb ? (b.shape[b.rank - 1], b.shape[b.rank - 2]) : (b.shape[b.rank - 2], b.shape[b.rank - 1])
        require(ka == kb, "matmul shapes \(shape)\(ta ? "ᵀ" : "") and \(other.shape)\(tb ? "ᵀ" : "") do not match: \(ka) vs \(kb)")

        // A batch of rows times one matrix is a single large product: fold the batch into rows.
        if a.rank > 2 && b.rank == 2 && !ta {
            let rows = a.reshape([-1, ka]).mm(b, transposeA: false, transposeB: tb)
            return rows.reshape(Array(a.shape.dropLast()) + [n])
        }
        let batchShape = check { try Shapes.broadcast(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2))) }
        let batch = batchShape.reduce(1, *)
        // A 2-D operand is reused for every batch (stride 0); a batched one is expanded if needed.
        if a.rank > 2 || batch > 1 { a = a.rank == 2 ? a : a.expand(batchShape + Array(a.shape.suffix(2))) }
        if b.rank > 2 || batch > 1 { b = b.rank == 2 ? b : b.expand(batchShape + Array(b.shape.suffix(2))) }
        let target = destination.flatMap { $0.buffer.shape == batchShape + [m, n] && $0.buffer.dtype == dtype ? $0 : nil }
        let out = target?.buffer ?? Tensor(uninitializedShape: batchShape + [m, n], dtype: dtype)
        let rounded = roundedB ?? (b.rank == 2 && b.isLeaf && b.requiresGrad ? Kernels.roundedForProducts(b) : nil)
        Kernels.gemm(a, b, into: out, batch: batch, m: m, n: n, k: ka, transA: ta, transB: tb,
                     strideA: a.rank == 2 ? 0 : m * ka, strideB: b.rank == 2 ? 0 : ka * n, alpha: target?.scale ?? 1, roundedB: rounded)
        return out.recordOp("MmBackward", [a, b], writingInto: { g, outputs in
            let ga = a.requiresGrad
                ? (ta ? b.mm(g, transposeA: tb, transposeB: true) : g.mm(b, transposeA: false, transposeB: !tb, roundedB: rounded)).sumTo(a.shape)
                : nil
            // A 2-D weight's gradient is one product: it can go straight where the engine asks.
            let into = b.rank == 2 && batch == 1 ? outputs[1] : nil
            let gb = b.requiresGrad
                ? (tb ? g.mm(a, transposeA: true, transposeB: ta, into: into) : a.mm(g, transposeA: !ta, transposeB: false, into: into)).sumTo(b.shape)
                : nil
            return [ga, gb]
        })
    }

    /// Dot product of two vectors.
    public func dot(_ other: Tensor) -> Tensor {
        require(rank == 1 && other.rank == 1, "dot needs two vectors, got shapes \(shape) and \(other.shape)")
        return matmul(other)
    }
}
