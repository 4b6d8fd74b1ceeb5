/// Transformer layers like `torch.nn.TransformerEncoderLayer`, `TransformerEncoder` and
/// `TransformerDecoderLayer`: PyTorch's arguments, defaults and state-dict keys (`self_attn.*`,
/// `multihead_attn.*`, `linear1.*`, `linear2.*`, `norm1.*` …), post-norm by default and pre-norm
/// with `normFirst`. `forward(x)` runs the layer without masks, for `Sequential`.

/// The feed-forward activation of a transformer layer (`"relu"`, PyTorch's default, or `"gelu"`).
public enum TransformerActivation: String, Sendable, StringOption {
    case relu, gelu

    func callAsFunction(_ x: Tensor) -> Tensor { self == .relu ? x.relu() : x.gelu() }
}

/// What every transformer layer is built from; kept so `TransformerEncoder` can clone a layer.
public struct TransformerLayerOptions: Sendable {
    public let dModel: Int, nhead: Int, dimFeedforward: Int, dropout: Double
    public let activation: TransformerActivation
    public let layerNormEps: Double, batchFirst: Bool, normFirst: Bool, bias: Bool

    init(_ layer: String, dModel: Int, nhead: Int, dimFeedforward: Int, dropout: Double, activation: TransformerActivation,
         layerNormEps: Double, batchFirst: Bool, normFirst: Bool, bias: Bool) {
        requireLayer(layer, ("dModel", dModel, 1), ("nhead", nhead, 1), ("dimFeedforward", dimFeedforward, 1))
        (self.dModel, self.nhead, self.dimFeedforward, self.dropout, self.activation) = (dModel, nhead, dimFeedforward, dropout, activation)
        (self.layerNormEps, self.batchFirst, self.normFirst, self.bias) = (layerNormEps, batchFirst, normFirst, bias)
    }

    func attention(_ generator: Generator) -> MultiheadAttention {
        MultiheadAttention(embedDim: dModel, numHeads: nhead, dropout: dropout, bias: bias, batchFirst: batchFirst, generator: generator)
    }
    func norm() -> LayerNorm { LayerNorm(normalizedShape: [dModel], eps: layerNormEps, bias: bias) }
    func linears(_ generator: Generator) -> (Linear, Linear) {
        (Linear(inFeatures: dModel, outFeatures: dimFeedforward, bias: bias, generator: generator),
         Linear(inFeatures: dimFeedforward, outFeatures: dModel, bias: bias, generator: generator))
    }
}

public final class TransformerEncoderLayer: Module {
    public let selfAttn: MultiheadAttention
    public let linear1: Linear, linear2: Linear
    public let norm1: LayerNorm, norm2: LayerNorm
    let dropout: Dropout, dropout1: Dropout, dropout2: Dropout
    public let options: TransformerLayerOptions
    let generator: Generator

    public init(dModel: Int, nhead: Int, dimFeedforward: Int = 2048, dropout: Double = 0.1,
                activation: TransformerActivation = .relu, layerNormEps: Double = 1e-5, batchFirst: Bool = false,
                normFirst: Bool = false, bias: Bool = true, generator: Generator = .default) {
        options = TransformerLayerOptions("TransformerEncoderLayer", dModel: dModel, nhead: nhead, dimFeedforward: dimFeedforward,
                                          dropout: dropout, activation: activation, layerNormEps: layerNormEps,
                                          batchFirst: batchFirst, normFirst: normFirst, bias: bias)
        self.generator = generator
        selfAttn = options.attention(generator)
        (linear1, linear2) = options.linears(generator)
        (norm1, norm2) = (options.norm(), options.norm())
        (self.dropout, dropout1, dropout2) = (Dropout(p: dropout, generator: generator), Dropout(p: dropout, generator: generator),
                                              Dropout(p: dropout, generator: generator))
        super.init()
    }

    /// A layer with the same options and a copy of this one's weights.
    public func copy() -> TransformerEncoderLayer {
        let o = options
        let c = TransformerEncoderLayer(dModel: o.dModel, nhead: o.nhead, dimFeedforward: o.dimFeedforward, dropout: o.dropout,
                                        activation: o.activation, layerNormEps: o.layerNormEps, batchFirst: o.batchFirst,
                                        normFirst: o.normFirst, bias: o.bias, generator: generator)
        try! c.loadStateDict(stateDict().mapValues { $0.clone() })
        return c
    }

    public override func forward(_ x: Tensor) -> Tensor { self(x, srcMask: nil) }

    /// `src` `[N, L, E]` with `batchFirst` (else `[L, N, E]`); masks as `MultiheadAttention`'s.
    public func callAsFunction(_ src: Tensor, srcMask: AttentionMask? = nil, srcKeyPaddingMask: AttentionMask? = nil,
                               isCausal: Bool = false) -> Tensor {
        func selfAttention(_ x: Tensor) -> Tensor {
            dropout1(selfAttn(x, x, x, keyPaddingMask: srcKeyPaddingMask, needWeights: false, attnMask: srcMask, isCausal: isCausal).output)
        }
        func feedForward(_ x: Tensor) -> Tensor {
            dropout2(linear2(dropout(options.activation(linear1(x)))))
        }
        if options.normFirst {
            let x = src + selfAttention(norm1(src))
            return x + feedForward(norm2(x))
        }
        let x = norm1(src + selfAttention(src))
        return norm2(x + feedForward(x))
    }
}

/// A stack of `numLayers` copies of an encoder layer (keys `layers.0.*`, …), with an optional
/// final norm (`norm.*`), like `torch.nn.TransformerEncoder`.
public final class TransformerEncoder: Module {
    public let layers: [TransformerEncoderLayer]
    public let norm: LayerNorm?

    /// `numLayers` clones of `encoderLayer` (same weights, as PyTorch's deep copies).
    public init(encoderLayer: TransformerEncoderLayer, numLayers: Int, norm: LayerNorm? = nil) {
        requireLayer("TransformerEncoder", ("numLayers", numLayers, 1))
        layers = (0..<numLayers).map { _ in encoderLayer.copy() }
        self.norm = norm
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { self(x, mask: nil) }

    public func callAsFunction(_ src: Tensor, mask: AttentionMask? = nil, srcKeyPaddingMask: AttentionMask? = nil,
                               isCausal: Bool = false) -> Tensor {
        var x = src
        for layer in layers { x = layer(x, srcMask: mask, srcKeyPaddingMask: srcKeyPaddingMask, isCausal: isCausal) }
        return norm.map { $0(x) } ?? x
    }
}

/// Self-attention over the target, attention over an encoder's output (`memory`), and a
/// feed-forward block, like `torch.nn.TransformerDecoderLayer`.
public final class TransformerDecoderLayer: Module {
    public let selfAttn: MultiheadAttention, multiheadAttn: MultiheadAttention
    public let linear1: Linear, linear2: Linear
    public let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
    let dropout: Dropout, dropout1: Dropout, dropout2: Dropout, dropout3: Dropout
    public let options: TransformerLayerOptions

    public init(dModel: Int, nhead: Int, dimFeedforward: Int = 2048, dropout: Double = 0.1,
                activation: TransformerActivation = .relu, layerNormEps: Double = 1e-5, batchFirst: Bool = false,
                normFirst: Bool = false, bias: Bool = true, generator: Generator = .default) {
        options = TransformerLayerOptions("TransformerDecoderLayer", dModel: dModel, nhead: nhead, dimFeedforward: dimFeedforward,
                                          dropout: dropout, activation: activation, layerNormEps: layerNormEps,
                                          batchFirst: batchFirst, normFirst: normFirst, bias: bias)
        (selfAttn, multiheadAttn) = (options.attention(generator), options.attention(generator))
        (linear1, linear2) = options.linears(generator)
        (norm1, norm2, norm3) = (options.norm(), options.norm(), options.norm())
        let drop = { Dropout(p: dropout, generator: generator) }
        (self.dropout, dropout1, dropout2, dropout3) = (drop(), drop(), drop(), drop())
        super.init()
    }

    /// Without a memory the layer attends to its own input in both attention blocks.
    public override func forward(_ x: Tensor) -> Tensor { self(x, memory: x) }

    public func callAsFunction(_ tgt: Tensor, memory: Tensor, tgtMask: AttentionMask? = nil, memoryMask: AttentionMask? = nil,
                               tgtKeyPaddingMask: AttentionMask? = nil, memoryKeyPaddingMask: AttentionMask? = nil,
                               tgtIsCausal: Bool = false, memoryIsCausal: Bool = false) -> Tensor {
        func selfAttention(_ x: Tensor) -> Tensor {
            dropout1(selfAttn(x, x, x, keyPaddingMask: tgtKeyPaddingMask, needWeights: false, attnMask: tgtMask, isCausal: tgtIsCausal).output)
        }
        func crossAttention(_ x: Tensor) -> Tensor {
            dropout2(multiheadAttn(x, memory, memory, keyPaddingMask: memoryKeyPaddingMask, needWeights: false,
                                   attnMask: memoryMask, isCausal: memoryIsCausal).output)
        }
        func feedForward(_ x: Tensor) -> Tensor { dropout3(linear2(dropout(options.activation(linear1(x))))) }
        if options.normFirst {
            var x = tgt + selfAttention(norm1(tgt))
            x = x + crossAttention(norm2(x))
            return x + feedForward(norm3(x))
        }
        var x = norm1(tgt + selfAttention(tgt))
        x = norm2(x + crossAttention(x))
        return norm3(x + feedForward(x))
    }
}
