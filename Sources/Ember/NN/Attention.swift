/// Multi-head attention, like `torch.nn.MultiheadAttention`: the same arguments, defaults,
/// initialisation and state-dict keys (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`,
/// `out_proj.bias`; `q_proj_weight`, `k_proj_weight`, `v_proj_weight` when `kdim` or `vdim`
/// differ from `embedDim`), so a PyTorch model's weights load by key.
///
/// `forward(x)` is self-attention returning the output only (for `Sequential`); the full call
/// takes query, key, value and masks and returns the attention weights too:
///
/// ```swift
/// let attn = MultiheadAttention(embedDim: 64, numHeads: 4, batchFirst: true)
/// let (y, weights) = attn(x, x, x, isCausal: true)   // x: [N, L, 64]
/// ```
public final class MultiheadAttention: Module {
    @OptionalParameter public var inProjWeight: Tensor?
    @OptionalParameter public var qProjWeight: Tensor?
    @OptionalParameter public var kProjWeight: Tensor?
    @OptionalParameter public var vProjWeight: Tensor?
    @OptionalParameter public var inProjBias: Tensor?
    public let outProj: Linear
    public let embedDim: Int, numHeads: Int, headDim: Int, kdim: Int, vdim: Int
    public let dropout: Double, batchFirst: Bool
    let generator: Generator

    /// - Parameter generator: draws the initial weights and the attention dropout masks.
    public init(embedDim: Int, numHeads: Int, dropout: Double = 0, bias: Bool = true, kdim: Int? = nil, vdim: Int? = nil,
                batchFirst: Bool = false, generator: Generator = .default) {
        requireLayer("MultiheadAttention", ("embedDim", embedDim, 1), ("numHeads", numHeads, 1))
        require(embedDim % numHeads == 0, "MultiheadAttention: embedDim \(embedDim) must be divisible by numHeads \(numHeads)")
        require(dropout >= 0 && dropout < 1, "MultiheadAttention: dropout must be in [0, 1), got \(dropout)")
        self.embedDim = embedDim
        self.numHeads = numHeads
        self.headDim = embedDim / numHeads
        self.kdim = kdim ?? embedDim
        self.vdim = vdim ?? embedDim
        self.dropout = dropout
        self.batchFirst = batchFirst
        self.generator = generator
        outProj = Linear(inFeatures: embedDim, outFeatures: embedDim, bias: bias, generator: generator)
        if self.kdim == embedDim && self.vdim == embedDim {
            _inProjWeight = OptionalParameter(wrappedValue: Init.xavierUniform(Tensor.zeros([3 * embedDim, embedDim]), generator: generator))
        } else {
            _qProjWeight = OptionalParameter(wrappedValue: Init.xavierUniform(Tensor.zeros([embedDim, embedDim]), generator: generator))
            _kProjWeight = OptionalParameter(wrappedValue: Init.xavierUniform(Tensor.zeros([embedDim, self.kdim]), generator: generator))
            _vProjWeight = OptionalParameter(wrappedValue: Init.xavierUniform(Tensor.zeros([embedDim, self.vdim]), generator: generator))
        }
        if bias {
            _inProjBias = OptionalParameter(wrappedValue: Tensor.zeros([3 * embedDim]))
            if let b = outProj.bias { noGrad { b.fill(0) } }
        }
        super.init()
    }

    /// Self-attention of `x`, output only.
    public override func forward(_ x: Tensor) -> Tensor {
        self(x, x, x, needWeights: false).output
    }

    /// Attention of `query` over `key`/`value`: `[N, L, E]` with `batchFirst`, `[L, N, E]`
    /// without, or unbatched `[L, E]`.
    ///
    /// - `keyPaddingMask`: `[N, S]` (or `[S]` unbatched); `.blocked(mask)` ignores the keys
    ///   where the mask is non-zero, as PyTorch's boolean mask does.
    /// - `attnMask`: `[L, S]` or `[N * numHeads, L, S]`; PyTorch's boolean mask is `.blocked`.
    /// - `isCausal`: each position attends to itself and earlier ones; with no other mask it
    ///   runs the fused causal kernel. (PyTorch treats it as a hint about `attnMask`.)
    /// - Returns: the output, and with `needWeights` the attention weights, averaged over the
    ///   heads (`[N, L, S]`) unless `averageAttnWeights` is false (`[N, numHeads, L, S]`).
    public func callAsFunction(_ query: Tensor, _ key: Tensor, _ value: Tensor, keyPaddingMask: AttentionMask? = nil,
                               needWeights: Bool = true, attnMask: AttentionMask? = nil,
                               averageAttnWeights: Bool = true, isCausal: Bool = false) -> (output: Tensor, weights: Tensor?) {
        let unbatched = query.rank == 2
        require(query.rank == 3 || unbatched, "MultiheadAttention expects query of rank 3 (or 2 unbatched), got \(query.shape)")
        require(key.rank == query.rank && value.rank == query.rank,
                "MultiheadAttention: query, key and value must have one rank, got \(query.shape), \(key.shape), \(value.shape)")
        // Work in [N, L, E].
        func batched(_ t: Tensor) -> Tensor { unbatched ? t.unsqueeze(0) : (batchFirst ? t : t.transpose(0, 1)) }
        let q = batched(query), k = batched(key), v = batched(value)
        let (n, l, s) = (q.shape[0], q.shape[1], k.shape[1])
        require(q.shape[2] == embedDim, "MultiheadAttention(\(embedDim)): query's last dimension is \(q.shape[2]), expected \(embedDim)")
        require(k.shape[2] == kdim && v.shape[2] == vdim,
                "MultiheadAttention: key and value need last dimensions \(kdim) and \(vdim), got \(key.shape) and \(value.shape)")
        require(k.shape[0] == n && v.shape[0] == n && v.shape[1] == s,
                "MultiheadAttention: key \(key.shape) and value \(value.shape) do not match query \(query.shape) in batch or length")

        let selfAttention = query === key && key === value
        let mask = combinedMask(attnMask, keyPaddingMask, n: n, l: l, s: s, causal: isCausal, dtype: q.dtype)
        // Self-attention without weights to return, masks beyond the causal one or dropout (the
        // common case: GPT, encoders in evaluation) attends straight from the packed projection.
        if selfAttention, let w = inProjWeight, mask == nil, !needWeights, dropout == 0 || !isTraining {
            let qkv = q.matmul(w, transposeB: true)
            let attended = Tensor.packedSelfAttention(inProjBias.map { qkv + $0 } ?? qkv, numHeads: numHeads, causal: isCausal)
            let out = outProj(attended)
            return (unbatched ? out.squeeze(0) : (batchFirst ? out : out.transpose(0, 1)), nil)
        }
        let (qp, kp, vp) = project(q, k, v, selfAttention: selfAttention)
        func heads(_ t: Tensor, _ len: Int) -> Tensor { t.reshape([n, len, numHeads, headDim]).transpose(1, 2) }
        let (attended, weights) = Tensor.attention(heads(qp, l), heads(kp, s), heads(vp, s), attnMask: mask.map { .additive($0) },
                                                    dropoutP: isTraining ? dropout : 0, isCausal: isCausal && mask == nil,
                                                    scale: nil, generator: generator)
        var out = outProj(attended.transpose(1, 2).reshape([n, l, embedDim]))
        out = unbatched ? out.squeeze(0) : (batchFirst ? out : out.transpose(0, 1))
        guard needWeights else { return (out, nil) }
        var w = averageAttnWeights ? weights.mean(dim: 1) : weights
        if unbatched { w = w.squeeze(0) }
        return (out, w)
    }

    /// The query, key and value projections; self-attention does all three in one product.
    private func project(_ q: Tensor, _ k: Tensor, _ v: Tensor, selfAttention: Bool) -> (Tensor, Tensor, Tensor) {
        let e = embedDim
        func bias(_ i: Int) -> Tensor? { inProjBias?.narrow(dim: 0, start: i * e, length: e) }
        func linear(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
            let y = x.matmul(w, transposeB: true)
            return b.map { y + $0 } ?? y
        }
        if let w = inProjWeight {
            if selfAttention {
                let parts = linear(q, w, inProjBias).split(e, dim: -1)
                return (parts[0], parts[1], parts[2])
            }
            return (linear(q, w.narrow(dim: 0, start: 0, length: e), bias(0)),
                    linear(k, w.narrow(dim: 0, start: e, length: e), bias(1)),
                    linear(v, w.narrow(dim: 0, start: 2 * e, length: e), bias(2)))
        }
        return (linear(q, qProjWeight!, bias(0)), linear(k, kProjWeight!, bias(1)), linear(v, vProjWeight!, bias(2)))
    }

    /// One additive mask `[L, S]` or `[N, H, L, S]` from the attention and key-padding masks
    /// (nil when there are none, or only a causal one the fused kernel applies itself).
    private func combinedMask(_ attnMask: AttentionMask?, _ padding: AttentionMask?, n: Int, l: Int, s: Int,
                              causal: Bool, dtype: DType) -> Tensor? {
        var mask = attnMask.map { m -> Tensor in
            let t = m.additive(dtype: dtype)
            if t.rank == 2 {
                require(t.shape == [l, s], "MultiheadAttention: attnMask must be [\(l), \(s)], got \(t.shape)")
                return t
            }
            require(t.shape == [n * numHeads, l, s], "MultiheadAttention: a 3-D attnMask must be [\(n * numHeads), \(l), \(s)], got \(t.shape)")
            return t.reshape([n, numHeads, l, s])
        }
        if let padding {
            let p = padding.additive(dtype: dtype)
            require(p.shape == [n, s] || (n == 1 && p.shape == [s]), "MultiheadAttention: keyPaddingMask must be [\(n), \(s)], got \(p.shape)")
            let spread = p.reshape([n, 1, 1, s])
            if mask == nil && causal { mask = AttentionMask.causal(l, s, dtype: dtype).additive(dtype: dtype) }
            mask = mask.map { $0 + spread } ?? spread
        }
        return mask
    }

    public override var extraDescription: String {
        "embed_dim=\(embedDim), num_heads=\(numHeads), dropout=\(dropout), batch_first=\(batchFirst)"
    }
}
