import Foundation

/// Llama as Hugging Face's `LlamaForCausalLM` computes it, under its keys
/// (`model.layers.0.self_attn.q_proj.weight`): RMSNorm before attention and MLP, rotary position
/// embeddings in the rotate-half convention (with Llama 3.1's scaling of their frequencies when
/// the config asks), grouped-query attention, a SwiGLU MLP, and a head tied to the embedding or
/// not (`tie_word_embeddings`).

final class LlamaAttention: Module {
    let qProj: Linear, kProj: Linear, vProj: Linear, oProj: Linear
    let heads: Int, kvHeads: Int, headDim: Int, theta: Double, scaling: RopeScaling?

    init(_ c: PretrainedConfig, generator g: Generator) {
        (heads, kvHeads, headDim, theta, scaling) = (c.heads, c.keyValueHeads, c.headDim, c.ropeTheta, c.ropeScaling)
        qProj = Linear(inFeatures: c.hiddenSize, outFeatures: c.heads * c.headDim, bias: false, generator: g)
        kProj = Linear(inFeatures: c.hiddenSize, outFeatures: c.keyValueHeads * c.headDim, bias: false, generator: g)
        vProj = Linear(inFeatures: c.hiddenSize, outFeatures: c.keyValueHeads * c.headDim, bias: false, generator: g)
        oProj = Linear(inFeatures: c.heads * c.headDim, outFeatures: c.hiddenSize, bias: false, generator: g)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor { forward(x, layer: 0, cache: nil) }

    /// Attention of positions `past..<past+t`; with a cache, over every earlier position too.
    func forward(_ x: Tensor, layer: Int, cache: KVCache?) -> Tensor {
        let (b, t, past) = (x.shape[0], x.shape[1], cache?.length ?? 0)
        func split(_ y: Tensor, _ n: Int) -> Tensor { y.reshape([b, t, n, headDim]).transpose(1, 2) }
        let (cos, sin) = Rotary.tables(positions: past..<(past + t), headDim: headDim, theta: theta, scaling: scaling)
        let q = Rotary.apply(split(qProj(x), heads), cos, sin)
        var k = Rotary.apply(split(kProj(x), kvHeads), cos, sin), v = split(vProj(x), kvHeads)
        let y: Tensor
        if let cache {
            y = cache.attend(layer, q: q, k: k, v: v)
        } else {
            if kvHeads != heads {  // grouped-query attention: each key/value head serves heads/kvHeads queries
                (k, v) = (k.repeatInterleave(heads / kvHeads, dim: 1), v.repeatInterleave(heads / kvHeads, dim: 1))
            }
            y = Tensor.scaledDotProductAttention(q, k, v, isCausal: true)
        }
        return oProj(y.transpose(1, 2).reshape([b, t, heads * headDim]))
    }
}

/// Rotary position embeddings, Hugging Face's convention: frequencies θ^(−2i/d) for the first
/// half of each head, repeated for the second half, and `x·cos + rotate_half(x)·sin`.
enum Rotary {
    /// The tables for `positions` alone (a cached token needs its own row, not all before it).
    static func tables(positions: Range<Int>, headDim d: Int, theta: Double, scaling: RopeScaling? = nil) -> (cos: Tensor, sin: Tensor) {
        let length = positions.count
        var cos = [Float](), sin = [Float]()
        cos.reserveCapacity(length * d)
        sin.reserveCapacity(length * d)
        let inverse = (0..<(d / 2)).map { i -> Float in
            let f = 1 / Foundation.pow(theta, Double(2 * i) / Double(d))
            return Float(scaling?.scaled(f) ?? f)
        }
        for p in positions {
            let angles = inverse.map { Float(p) * $0 }
            for a in angles + angles {
                cos.append(Foundation.cos(a))
                sin.append(Foundation.sin(a))
            }
        }
        return (Tensor(cos, shape: [length, d]), Tensor(sin, shape: [length, d]))
    }

    /// `x` `[batch, heads, time, d]` rotated by position.
    static func apply(_ x: Tensor, _ cos: Tensor, _ sin: Tensor) -> Tensor {
        let halves = x.chunk(2, dim: 3)
        let rotated = Tensor.cat([-halves[1], halves[0]], dim: 3)
        return x * cos + rotated * sin
    }
}

final class LlamaMLP: Module {
    let gateProj: Linear, upProj: Linear, downProj: Linear

    init(_ c: PretrainedConfig, generator g: Generator) {
        gateProj = Linear(inFeatures: c.hiddenSize, outFeatures: c.intermediateSize, bias: false, generator: g)
        upProj = Linear(inFeatures: c.hiddenSize, outFeatures: c.intermediateSize, bias: false, generator: g)
        downProj = Linear(inFeatures: c.intermediateSize, outFeatures: c.hiddenSize, bias: false, generator: g)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor { downProj(gateProj(x).silu() * upProj(x)) }
}

final class LlamaDecoderLayer: Module {
    let selfAttn: LlamaAttention, mlp: LlamaMLP
    let inputLayernorm: RMSNorm, postAttentionLayernorm: RMSNorm

    init(_ c: PretrainedConfig, generator g: Generator) {
        (selfAttn, mlp) = (LlamaAttention(c, generator: g), LlamaMLP(c, generator: g))
        inputLayernorm = RMSNorm(normalizedShape: [c.hiddenSize], eps: c.normEpsilon)
        postAttentionLayernorm = RMSNorm(normalizedShape: [c.hiddenSize], eps: c.normEpsilon)
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor { forward(x, layer: 0, cache: nil) }

    func forward(_ x: Tensor, layer: Int, cache: KVCache?) -> Tensor {
        let h = x + selfAttn.forward(inputLayernorm(x), layer: layer, cache: cache)
        return h + mlp(postAttentionLayernorm(h))
    }
}

final class LlamaModel: Module {
    let embedTokens: Embedding
    let layers: [LlamaDecoderLayer]
    let norm: RMSNorm

    init(_ c: PretrainedConfig, generator g: Generator) {
        embedTokens = Embedding(numEmbeddings: c.vocabularySize, embeddingDim: c.hiddenSize, generator: g)
        layers = (0..<c.layers).map { _ in LlamaDecoderLayer(c, generator: g) }
        norm = RMSNorm(normalizedShape: [c.hiddenSize], eps: c.normEpsilon)
        super.init()
    }

    override func forward(_ tokens: Tensor) -> Tensor {
        var x = embedTokens(tokens)
        for layer in layers { x = layer(x) }
        return norm(x)
    }

    func forward(_ tokens: Tensor, cache: KVCache) -> Tensor {
        var x = embedTokens(tokens)
        for (i, layer) in layers.enumerated() { x = layer.forward(x, layer: i, cache: cache) }
        return norm(x)
    }
}
