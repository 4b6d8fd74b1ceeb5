/// Scaled dot-product attention, `softmax(q kᵀ · scale + mask) v`, with the scaling, masking and
/// softmax fused into one pass over the scores and one over their gradient.
extension Tensor {
    /// `torch.nn.functional.scaled_dot_product_attention`: `query [..., L, E]`, `key [..., S, E]`,
    /// `value [..., S, Ev]` (leading dimensions broadcast) → `[..., L, Ev]`.
    ///
    /// - `attnMask`: which positions may be attended to, broadcast to `[..., L, S]`.
    /// - `isCausal`: position `i` attends to `j <= i` only (PyTorch's top-left causal mask),
    ///   without building an L×S mask; cannot be combined with `attnMask`.
    /// - `dropoutP`: dropout on the attention weights, drawn from `generator` (pass 0 in
    ///   evaluation, as in PyTorch).
    /// - `scale`: defaults to `1 / sqrt(E)`.
    public static func scaledDotProductAttention(_ query: Tensor, _ key: Tensor, _ value: Tensor,
                                                 attnMask: AttentionMask? = nil, dropoutP: Double = 0,
                                                 isCausal: Bool = false, scale: Double? = nil,
                                                 generator: Generator = .default) -> Tensor {
        attention(query, key, value, attnMask: attnMask, dropoutP: dropoutP, isCausal: isCausal,
                  scale: scale, generator: generator).output
    }

    /// The attention output and the (dropped-out) weights `[..., L, S]`.
    static func attention(_ query: Tensor, _ key: Tensor, _ value: Tensor, attnMask: AttentionMask?,
                          dropoutP: Double, isCausal: Bool, scale: Double?, generator: Generator) -> (output: Tensor, weights: Tensor) {
        require(query.rank >= 2 && key.rank >= 2 && value.rank >= 2,
                "scaledDotProductAttention needs query, key and value of rank ≥ 2, got \(query.shape), \(key.shape), \(value.shape)")
        let (l, e) = (query.shape[query.rank - 2], query.shape[query.rank - 1])
        let (s, ek) = (key.shape[key.rank - 2], key.shape[key.rank - 1])
        let (sv, ev) = (value.shape[value.rank - 2], value.shape[value.rank - 1])
        require(e == ek, "scaledDotProductAttention: query's last dimension \(e) differs from key's \(ek) (shapes \(query.shape), \(key.shape))")
        require(s == sv, "scaledDotProductAttention: key has \(s) positions but value has \(sv) (shapes \(key.shape), \(value.shape))")
        require(!(isCausal && attnMask != nil), "scaledDotProductAttention: give attnMask or isCausal, not both")
        require(dropoutP >= 0 && dropoutP < 1, "scaledDotProductAttention: dropoutP must be in [0, 1), got \(dropoutP)")
        let batchShape = check {
            try Shapes.broadcast(Shapes.broadcast(Array(query.shape.dropLast(2)), Array(key.shape.dropLast(2))), Array(value.shape.dropLast(2)))
        }
        let b = batchShape.reduce(1, *)
        let q = query.expand(batchShape + [l, e]).reshape([b, l, e])
        let k = key.expand(batchShape + [s, e]).reshape([b, s, e])
        let v = value.expand(batchShape + [s, ev]).reshape([b, s, ev])
        let dtype = q.dtype
        // A mask without batch dimensions of its own is shared by every batch (not copied).
        let mask = attnMask.map { m -> Tensor in
            let additive = m.additive(dtype: dtype)
            let own = Array(additive.shape.dropLast(2))
            guard own.allSatisfy({ $0 == 1 }) else { return additive.expand(batchShape + [l, s]).reshape([b, l, s]) }
            let tail = Array(([1, 1] + additive.shape).suffix(2))
            return additive.reshape(tail).expand([l, s])
        }
        let scores = q.matmul(k, transposeB: true)
        var weights = scores.attentionSoftmax(scale: scale ?? 1 / Double(e).squareRoot(), mask: mask, causal: isCausal)
        if dropoutP > 0 {
            let keep = Tensor.rand(weights.shape, dtype: dtype, generator: generator).ge(dropoutP) / (1 - dropoutP)
            weights = weights * keep
        }
        let out = weights.matmul(v).reshape(batchShape + [l, ev])
        return (out, weights.reshape(batchShape + [l, s]))
    }

    /// `softmax(scale * self + mask)` over the last axis of `[batch, rows, cols]` scores, causal
    /// or not (the fused kernel), with its gradient for the scores and a mask that needs one.
    func attentionSoftmax(scale: Double, mask: Tensor?, causal: Bool) -> Tensor {
        let (rows, cols) = (shape[1], shape[2])
        let mask = mask.map { $0.to(dtype) }
        let out = Kernels.attentionSoftmax(self, scale: scale, mask: mask, causal: causal, batch: shape[0], rows: rows, cols: cols)
        guard GradMode.isEnabled && (requiresGrad || mask?.requiresGrad == true) else { return out }
        let saved = out.detach()
        return out.recordOp("AttentionSoftmaxBackward", [self] + (mask.map { [$0] } ?? [])) { [scores = self] g in
            if GradMode.isEnabled {
                // Under createGraph: the same gradient from recorded ops, differentiable again.
                let p = scores.attentionSoftmax(scale: scale, mask: mask, causal: causal)
                let dz = p * (g - (g * p).sum(dim: -1, keepDim: true))
                return [dz * scale] + (mask.map { [dz.sumTo($0.shape)] } ?? [])
            }
            guard let mask, mask.requiresGrad else {
                let gs = Kernels.attentionSoftmaxBackward(g, saved, cols: cols, scale: scale)
                return mask == nil ? [gs] : [gs, nil]
            }
            let dz = Kernels.attentionSoftmaxBackward(g, saved, cols: cols, scale: 1)
            return [scores.requiresGrad ? dz * scale : nil, dz.sumTo(mask.shape)]
        }
    }
}

/// Which positions attention may look at. PyTorch uses boolean masks with opposite meanings in
/// different places (`scaled_dot_product_attention`: true = attend; `MultiheadAttention`: true =
/// blocked) and float masks that are added; Ember, whose masks are 0/1 tensors, says which.
public enum AttentionMask {
    /// Added to the scaled scores: 0 to attend, `-inf` to block (PyTorch's float masks).
    case additive(Tensor)
    /// Non-zero where attending is allowed (PyTorch's boolean mask for
    /// `scaled_dot_product_attention`).
    case allowed(Tensor)
    /// Non-zero where attending is blocked (PyTorch's boolean `attn_mask` and
    /// `key_padding_mask` of `MultiheadAttention`).
    case blocked(Tensor)

    /// The mask as an additive float tensor of `dtype`.
    public func additive(dtype: DType) -> Tensor {
        switch self {
        case .additive(let t): return t.to(dtype)
        case .allowed(let t): return Tensor.where(t, Tensor(scalar: 0, dtype: dtype), Tensor(scalar: -.infinity, dtype: dtype))
        case .blocked(let t): return Tensor.where(t, Tensor(scalar: -.infinity, dtype: dtype), Tensor(scalar: 0, dtype: dtype))
        }
    }

    /// The causal mask `[l, s]` as an additive tensor (position i sees j <= i), for layers that
    /// combine it with other masks.
    public static func causal(_ l: Int, _ s: Int, dtype: DType = .float32) -> AttentionMask {
        .allowed(Tensor.ones([l, s], dtype: dtype).tril())
    }
}
