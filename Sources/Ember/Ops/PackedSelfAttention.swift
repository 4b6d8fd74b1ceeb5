/// Self-attention straight from the packed projection `nn.MultiheadAttention` makes.
extension Tensor {
    /// `qkv [N, L, 3E]` (each position's query, key and value side by side, as `in_proj_weight`
    /// produces them) → the heads' outputs side by side, `[N, L, E]`: `numHeads` heads of
    /// `E / numHeads` columns, scaled by `1/sqrt(E / numHeads)`, causal or not, no mask, no
    /// dropout. The same as splitting, attending per head and merging, without copying any of
    /// it: each head's products read its columns in place (BLAS leading dimensions) and write
    /// their results where the merged output and the packed gradient keep them.
    static func packedSelfAttention(_ qkv: Tensor, numHeads: Int, causal: Bool) -> Tensor {
        let heads = PackedHeads(qkv, numHeads: numHeads, causal: causal)
        let out = Tensor(uninitializedShape: [heads.n, heads.l, heads.e], dtype: qkv.dtype)
        let weights = Tensor(uninitializedShape: [heads.count, heads.l, heads.l], dtype: qkv.dtype)
        // Under bf16 autocast Q, K, V and the weights are rounded once for forward's and
        // backward's products (nil otherwise).
        let rounded = (qkv: Kernels.roundedForProducts(qkv), weights: Kernels.bfloat16Buffer(weights.shape))
        switch qkv.dtype {
        case .float32: heads.forward(Float.self, qkv, rounded, weights: weights, into: out)
        case .float64: heads.forward(Double.self, qkv, rounded, weights: weights, into: out)
        case .int64, .bfloat16: stop(qkv.dtype.refusal("attention"))
        }
        return out.recordOp("PackedSelfAttentionBackward", [qkv]) { g in
            // Under createGraph: the same gradient from recorded ops, differentiable again.
            if GradMode.isEnabled { return [heads.recordedGradient(qkv, g)] }
            let dqkv = Tensor(uninitializedShape: qkv.shape, dtype: qkv.dtype)
            switch qkv.dtype {
            case .float32: heads.backward(Float.self, qkv, rounded, weights: weights, gradient: g, into: dqkv)
            case .float64: heads.backward(Double.self, qkv, rounded, weights: weights, gradient: g, into: dqkv)
            case .int64: break
            case .bfloat16: stop(DType.bfloat16Refused("attention"))
            }
            return [dqkv]
        }
    }
}

/// The heads of a packed `qkv [N, L, 3E]` and their products, forward and backward.
private struct PackedHeads {
    let n: Int, l: Int, e: Int, d: Int, numHeads: Int
    let scale: Double, causal: Bool
    var count: Int { n * numHeads }

    init(_ qkv: Tensor, numHeads: Int, causal: Bool) {
        (n, l, e) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
        (d, self.numHeads, self.causal) = (e / numHeads, numHeads, causal)
        scale = 1 / Double(d).squareRoot()
    }

    /// Where head h of sample b starts in `qkv`'s block `which` (0 query, 1 key, 2 value); its
    /// rows are 3E apart.
    func at(_ b: Int, _ h: Int, _ which: Int) -> Int { b * l * 3 * e + which * e + h * d }

    /// `body(scratch, sample, head, the head's index among all)` for every head. Heads are
    /// independent, so runs of them are shared by the product threads (each head's small
    /// products on one), each run with a `scratch` of its own made on its thread.
    func forEach<S>(scratch make: () -> S, _ body: (S, Int, Int, Int) -> Void) {
        Kernels.share(count, grain: 4) { start, end in
            let scratch = make()
            for i in start..<end { body(scratch, i / numHeads, i % numHeads, i) }
            withExtendedLifetime(scratch) {}
        }
    }

    /// Which part of each product causal attention needs (`.whole` when not causal).
    func part(_ triangle: AttentionTriangle) -> AttentionTriangle { causal ? triangle : .whole }

    /// One head at a time: its scores, weights and their bfloat16 copy are still in cache for
    /// its second product (`scratch` holds one head's scores and a transposed key block).
    func forward<T: FloatElement>(_ type: T.Type, _ qkv: Tensor, _ rounded: (qkv: Tensor?, weights: Tensor?), weights: Tensor, into out: Tensor) {
        let x = ProductOperand(qkv.pointer(T.self), rounded: rounded.qkv)
        let p = ProductOperand(weights.pointer(T.self), rounded: rounded.weights), o = out.pointer(T.self)
        forEach(scratch: { Tensor(uninitializedShape: [l * l + l * d], dtype: qkv.dtype) }) { scratch, b, h, i in
            let block = i * l * l, s = scratch.pointer(T.self)
            Kernels.attentionProduct(false, true, m: l, n: l, k: d, x + at(b, h, 0), lda: 3 * e, x + at(b, h, 1), ldb: 3 * e,
                                     s, ldc: l, triangle: part(.lowerOutput), scratch: s + l * l)
            Kernels.attentionSoftmax(UnsafePointer(s), mask: nil, maskStride: 0, into: weights.pointer(T.self) + block,
                                     batch: 1, rows: l, cols: l, scale: scale, causal: causal)
            if let r = rounded.weights { Kernels.roundForProducts(p.values + block, count: l * l, into: r.bfloat16Pointer(block)) }
            Kernels.attentionProduct(false, false, m: l, n: d, k: l, p + block, lda: l, x + at(b, h, 2), ldb: 3 * e,
                                     o + b * l * e + h * d, ldc: e, triangle: part(.kUpToRow), scratch: s + l * l)
        }
    }

    /// Head by head, as forward: one head's weight and score gradients (and the latter's
    /// bfloat16 copy) live in a scratch of two `[L, L]` blocks and a transposed value block.
    func backward<T: FloatElement>(_ type: T.Type, _ qkv: Tensor, _ rounded: (qkv: Tensor?, weights: Tensor?), weights: Tensor,
                                   gradient g: Tensor, into dqkv: Tensor) {
        let roundedGradient = Kernels.roundedForProducts(g)
        let x = ProductOperand(qkv.pointer(T.self), rounded: rounded.qkv), dx = dqkv.pointer(T.self)
        let gp = ProductOperand(g.pointer(T.self), rounded: roundedGradient)
        let p = ProductOperand(weights.pointer(T.self), rounded: rounded.weights)
        let scratch = { (Tensor(uninitializedShape: [2 * l * l + l * d], dtype: qkv.dtype), Kernels.bfloat16Buffer([l, l], for: T.self)) }
        forEach(scratch: scratch) { scratch, b, h, i in
            let (dp, roundedScores) = (scratch.0.pointer(T.self), scratch.1)
            let ds = ProductOperand(UnsafePointer(dp + l * l), rounded: roundedScores?.bfloat16Pointer())
            let go = gp + (b * l * e + h * d), block = i * l * l, transposed = dp + 2 * l * l
            Kernels.attentionProduct(false, true, m: l, n: l, k: d, go, lda: e, x + at(b, h, 2), ldb: 3 * e, dp, ldc: l,
                                     triangle: part(.lowerOutput), scratch: transposed)
            Kernels.attentionProduct(true, false, m: l, n: d, k: l, p + block, lda: l, go, ldb: e, dx + at(b, h, 2), ldc: 3 * e,
                                     triangle: part(.kFromRow), scratch: transposed)
            Kernels.attentionSoftmaxBackward(UnsafePointer(dp), p.values + block, into: dp + l * l, rows: l, cols: l, scale: scale,
                                             causalRows: causal ? l : 0)
            if let roundedScores { Kernels.roundForProducts(ds.values, count: l * l, into: roundedScores.bfloat16Pointer()) }
            Kernels.attentionProduct(false, false, m: l, n: d, k: l, ds, lda: l, x + at(b, h, 1), ldb: 3 * e, dx + at(b, h, 0), ldc: 3 * e,
                                     triangle: part(.kUpToRow), scratch: transposed)
            Kernels.attentionProduct(true, false, m: l, n: d, k: l, ds, lda: l, x + at(b, h, 0), ldb: 3 * e, dx + at(b, h, 1), ldc: 3 * e,
                                     triangle: part(.kFromRow), scratch: transposed)
        }
        withExtendedLifetime(roundedGradient) {}
    }

    /// The gradient of `qkv` from recorded ops (split, attend per head, merge), for createGraph.
    func recordedGradient(_ qkv: Tensor, _ g: Tensor) -> Tensor {
        func split(_ t: Tensor) -> Tensor { t.reshape([n, l, numHeads, d]).transpose(1, 2).reshape([count, l, d]) }
        func merged(_ t: Tensor) -> Tensor { t.reshape([n, numHeads, l, d]).transpose(1, 2).reshape([n, l, e]) }
        let parts = qkv.split(e, dim: -1)
        let (q, k, v) = (split(parts[0]), split(parts[1]), split(parts[2]))
        let p = q.matmul(k, transposeB: true).attentionSoftmax(scale: scale, mask: nil, causal: causal)
        let go = split(g)
        let dp = go.matmul(v, transposeB: true)
        let ds = p * (dp - (dp * p).sum(dim: -1, keepDim: true)) * scale
        return Tensor.cat([merged(ds.matmul(k)), merged(ds.matmul(q, transposeA: true)), merged(p.matmul(go, transposeA: true))], dim: -1)
    }
}
