/// `y = x Wᵀ + b`, like `torch.nn.Linear`; weight `[outFeatures, inFeatures]`.
open class Linear: Module {
    @Parameter public var weight: Tensor
    @OptionalParameter public var bias: Tensor?
    public let inFeatures: Int
    public let outFeatures: Int

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, dtype: DType = .float32,
                generator: Generator = .default) {
        requireLayer("Linear", ("inFeatures", inFeatures, 0), ("outFeatures", outFeatures, 0))
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        (_weight, _bias) = Init.layerParameters(weight: [outFeatures, inFeatures], biasCount: bias ? outFeatures : nil,
                                                dtype: dtype, generator: generator)
        super.init()
    }

    open override func forward(_ x: Tensor) -> Tensor {
        require(x.rank >= 1 && x.shape.last == inFeatures,
                     "Linear(\(inFeatures) → \(outFeatures)) got input of shape \(x.shape); its last dimension must be \(inFeatures)")
        let input = x.rank == 1 ? x.unsqueeze(0) : x
        var y = input.matmul(weight, transposeB: true)
        if let bias { y = y + bias }
        return x.rank == 1 ? y.squeeze(0) : y
    }

    open override var extraDescription: String {
        "in_features=\(inFeatures), out_features=\(outFeatures), bias=\(bias != nil)"
    }
}

/// Returns its input, like `torch.nn.Identity`.
public final class Identity: Module {
    public override func forward(_ x: Tensor) -> Tensor { x }
}

/// Merges dimensions `startDim...endDim` (default: all but the batch dimension).
public final class Flatten: Module {
    public let startDim: Int, endDim: Int
    public init(startDim: Int = 1, endDim: Int = -1) {
        self.startDim = startDim
        self.endDim = endDim
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor { x.flatten(startDim: startDim, endDim: endDim) }
}
