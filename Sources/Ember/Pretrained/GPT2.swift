/// GPT-2 as Hugging Face's `GPT2LMHeadModel` computes it, under its keys (`transformer.h.0.attn.c_attn.weight`):
/// learned positions, pre-norm blocks, tanh-approximated GELU (`gelu_new`), `Conv1D` layers that
/// store their weights `[in, out]`, and a head tied to the token embedding.

/// GPT-2's `Conv1D`: `y = x W + b` with `W` stored `[in, out]`, as the checkpoints store it.
final class Conv1D: Module {
    @Parameter var weight: Tensor
    @Parameter var bias: Tensor

    init(_ inFeatures: Int, _ outFeatures: Int) {
        _weight = Parameter(wrappedValue: Tensor.zeros([inFeatures, outFeatures]))
        _bias = Parameter(wrappedValue: Tensor.zeros([outFeatures]))
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor { x.matmul(weight) + bias }
}

final class GPT2Attention: Module {
    let cAttn: Conv1D, cProj: Conv1D
    let heads: Int, scales: Bool

    init(_ c: PretrainedConfig) {
        (cAttn, cProj) = (Conv1D(c.hiddenSize, 3 * c.hiddenSize), Conv1D(c.hiddenSize, c.hiddenSize))
        (heads, scales) = (c.heads, c.scalesAttention)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor {
        let (b, t, e) = (x.shape[0], x.shape[1], x.shape[2])
        let qkv = cAttn(x)
        // Scaled scores go straight from the packed projection; unscaled ones (scale_attn_weights
        // false) through the general path.
        guard !scales else { return cProj(Tensor.packedSelfAttention(qkv, numHeads: heads, causal: true)) }
        let split = (0..<3).map { qkv.narrow(dim: 2, start: $0 * e, length: e).reshape([b, t, heads, e / heads]).transpose(1, 2) }
        let y = Tensor.scaledDotProductAttention(split[0], split[1], split[2], isCausal: true, scale: 1)
        return cProj(y.transpose(1, 2).reshape([b, t, e]))
    }

    /// The new positions' output, their keys and values added to layer `layer` of `cache`.
    func forward(_ x: Tensor, layer: Int, cache: KVCache) -> Tensor {
        let (t, e) = (x.shape[1], x.shape[2])
        let qkv = cAttn(x)
        let split = (0..<3).map { qkv.narrow(dim: 2, start: $0 * e, length: e).reshape([1, t, heads, e / heads]).transpose(1, 2) }
        let y = cache.attend(layer, q: split[0], k: split[1], v: split[2], scale: scales ? nil : 1)
        return cProj(y.transpose(1, 2).reshape([1, t, e]))
    }
}

final class GPT2MLP: Module {
    let cFc: Conv1D, cProj: Conv1D

    init(_ c: PretrainedConfig) {
        (cFc, cProj) = (Conv1D(c.hiddenSize, c.intermediateSize), Conv1D(c.intermediateSize, c.hiddenSize))
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor { cProj(cFc(x).gelu(approximate: .tanh)) }
}

final class GPT2Block: Module {
    let ln1: LayerNorm, attn: GPT2Attention, ln2: LayerNorm, mlp: GPT2MLP

    init(_ c: PretrainedConfig) {
        ln1 = LayerNorm(normalizedShape: [c.hiddenSize], eps: c.normEpsilon)
        ln2 = LayerNorm(normalizedShape: [c.hiddenSize], eps: c.normEpsilon)
        (attn, mlp) = (GPT2Attention(c), GPT2MLP(c))
        super.init()
    }

    /// The checkpoints' names (`ln_1`, not the `ln1` a Swift name would give).
    override var namedChildren: [(String, Module)] { [("ln_1", ln1), ("attn", attn), ("ln_2", ln2), ("mlp", mlp)] }

    override func forward(_ x: Tensor) -> Tensor {
        let h = x + attn(ln1(x))
        return h + mlp(ln2(h))
    }

    func forward(_ x: Tensor, layer: Int, cache: KVCache) -> Tensor {
        let h = x + attn.forward(ln1(x), layer: layer, cache: cache)
        return h + mlp(ln2(h))
    }
}

final class GPT2Model: Module {
    let wte: Embedding, wpe: Embedding
    let h: [GPT2Block]
    let lnF: LayerNorm

    init(_ c: PretrainedConfig, generator g: Generator) {
        wte = Embedding(numEmbeddings: c.vocabularySize, embeddingDim: c.hiddenSize, generator: g)
        wpe = Embedding(numEmbeddings: c.maxPositions, embeddingDim: c.hiddenSize, generator: g)
        h = (0..<c.layers).map { _ in GPT2Block(c) }
        lnF = LayerNorm(normalizedShape: [c.hiddenSize], eps: c.normEpsilon)
        super.init()
    }

    /// Token ids `[batch, time]` to the final hidden states `[batch, time, width]`.
    override func forward(_ tokens: Tensor) -> Tensor {
        let positions = Tensor(indices: Array(0..<tokens.shape[1]))
        var x = wte(tokens) + wpe(positions)
        for block in h { x = block(x) }
        return lnF(x)
    }

    /// The hidden states of tokens that continue those `cache` holds.
    func forward(_ tokens: Tensor, cache: KVCache) -> Tensor {
        let positions = Tensor(indices: Array(cache.length..<(cache.length + tokens.shape[1])))
        var x = wte(tokens) + wpe(positions)
        for (i, block) in h.enumerated() { x = block.forward(x, layer: i, cache: cache) }
        return lnF(x)
    }
}
