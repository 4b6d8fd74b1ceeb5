/// The keys and values every attention layer has computed for one sequence so far, so that
/// generating a token computes only that token (the prefix is never run again). Each layer's
/// keys and values sit in a buffer with room to grow (doubled when full): a new token's are
/// written after the others, and its attention reads the buffer where it is. (Concatenating
/// instead copied every cached key and value at every token: a cost that grew with the text.)
public final class KVCache {
    /// One layer's keys and values, `[heads, capacity, d]` each; the first `length` positions hold values.
    final class Layer {
        var keys: Tensor, values: Tensor
        var capacity: Int { keys.shape[1] }
        init(heads: Int, capacity: Int, d: Int) {
            keys = Tensor(uninitializedShape: [heads, capacity, d], dtype: .float32)
            values = Tensor(uninitializedShape: [heads, capacity, d], dtype: .float32)
        }
    }
    var layers: [Layer?]
    /// Positions the cache holds.
    public private(set) var length = 0

    public init(layers: Int) {
        self.layers = Array(repeating: nil, count: layers)
    }

    func advance(by n: Int) { length += n }

    /// Layer `i`'s attention of the new queries `q [1, heads, t, d]` over the cached positions and
    /// the new ones, whose keys and values `k`, `v` `[1, kvHeads, t, d]` are added to the cache:
    /// the prompt (an empty cache) attends causally among itself, then one token at a time
    /// attends to every earlier one. `[1, heads, t, d]`, as `scaledDotProductAttention` gives.
    func attend(_ i: Int, q: Tensor, k: Tensor, v: Tensor, scale: Double? = nil) -> Tensor {
        let (heads, t, d, kvHeads) = (q.shape[1], q.shape[2], q.shape[3], k.shape[1])
        require(length == 0 || t == 1, "a KVCache is extended by the prompt, then one token at a time (got \(t) new tokens)")
        require(q.dtype == .float32, "a KVCache holds float32 keys and values, got \(q.dtype)")
        let layer = room(i, heads: kvHeads, d: d, adding: t)
        store(k, v, into: layer, at: length)
        let s = scale ?? 1 / Double(d).squareRoot()
        if length == 0 {
            let groups = heads / kvHeads  // grouped-query attention: a key/value head serves `groups` query heads
            let (kk, vv) = groups == 1 ? (k, v) : (k.repeatInterleave(groups, dim: 1), v.repeatInterleave(groups, dim: 1))
            return Tensor.scaledDotProductAttention(q, kk, vv, isCausal: true, scale: s)
        }
        return oneToken(q, layer, positions: length + 1, kvHeads: kvHeads, scale: s)
    }

    /// Layer `i`'s buffers with room for `t` more positions.
    private func room(_ i: Int, heads: Int, d: Int, adding t: Int) -> Layer {
        let needed = length + t
        guard let layer = layers[i] else {
            let made = Layer(heads: heads, capacity: Swift.max(2 * needed, 64), d: d)
            layers[i] = made
            return made
        }
        guard needed > layer.capacity else { return layer }
        let grown = Layer(heads: heads, capacity: 2 * needed, d: d)
        for (from, to) in [(layer.keys, grown.keys), (layer.values, grown.values)] {
            for h in 0..<heads {
                (to.pointer(Float.self) + h * grown.capacity * d).update(from: from.pointer(Float.self) + h * layer.capacity * d, count: length * d)
            }
        }
        layers[i] = grown
        return grown
    }

    /// `k`, `v` `[1, heads, t, d]` written at positions `start..<start+t` of the buffers.
    private func store(_ k: Tensor, _ v: Tensor, into layer: Layer, at start: Int) {
        let (heads, t, d) = (k.shape[1], k.shape[2], k.shape[3])
        for (new, buffer) in [(k, layer.keys), (v, layer.values)] {
            for h in 0..<heads {
                (buffer.pointer(Float.self) + (h * layer.capacity + start) * d).update(from: new.pointer(Float.self) + h * t * d, count: t * d)
            }
        }
    }

    /// One query per head over the first `positions` cached keys and values, read in place: per
    /// key/value head, its `groups` query heads' scores (one product), their softmax, and the
    /// weighted values (another), as `scaledDotProductAttention` computes them.
    private func oneToken(_ q: Tensor, _ layer: Layer, positions n: Int, kvHeads: Int, scale: Double) -> Tensor {
        let (heads, d) = (q.shape[1], q.shape[3]), groups = heads / kvHeads, capacity = layer.capacity
        let scores = Tensor(uninitializedShape: [heads, n], dtype: .float32), weights = Tensor(uninitializedShape: [heads, n], dtype: .float32)
        let out = Tensor(uninitializedShape: [1, heads, 1, d], dtype: .float32)
        let (qp, sp, wp, op) = (q.pointer(Float.self), scores.pointer(Float.self), weights.pointer(Float.self), out.pointer(Float.self))
        let (kp, vp) = (layer.keys.pointer(Float.self), layer.values.pointer(Float.self))
        for g in 0..<kvHeads {
            Kernels.gemm(false, true, m: groups, n: n, k: d, ProductOperand(qp + g * groups * d), lda: d,
                         ProductOperand(kp + g * capacity * d), ldb: d, beta: 0, sp + g * groups * n, ldc: n)
        }
        Kernels.attentionSoftmax(sp, mask: nil, maskStride: 0, into: wp, batch: heads, rows: 1, cols: n, scale: scale, causal: false)
        for g in 0..<kvHeads {
            Kernels.gemm(false, false, m: groups, n: d, k: n, ProductOperand(wp + g * groups * n), lda: n,
                         ProductOperand(vp + g * capacity * d), ldb: d, beta: 0, op + g * groups * d, ldc: d)
        }
        return out
    }
}

extension CausalLM {
    /// The logits `[vocab]` after `tokens`, the tokens that follow those `cache` holds (the whole
    /// prompt first, then one token at a time), extending the cache. Without gradients.
    public func nextLogits(after tokens: [Int], cache: KVCache) -> Tensor {
        require(!tokens.isEmpty, "nextLogits(after:cache:) needs at least one token")
        return noGrad {
            let x = Tensor(indices: tokens, shape: [1, tokens.count])
            let hidden: Tensor, head: Tensor
            if let transformer {
                hidden = transformer.forward(x, cache: cache)
                head = transformer.wte.weight
            } else {
                hidden = model!.forward(x, cache: cache)
                head = lmHead?.weight ?? model!.embedTokens.weight
            }
            cache.advance(by: tokens.count)
            // The head as the product's right operand, as in forward (there it can stay packed).
            let last = hidden[0][tokens.count - 1]
            return last.unsqueeze(0).matmul(head, transposeB: true).squeeze(0)
        }
    }

    /// The longest sequence the model takes (GPT-2's learned positions; Llama's trained length).
    public var maxPositions: Int { config.maxPositions }
}
