/// Batch normalisation over all dimensions but the channel dimension 1, like `torch.nn.BatchNorm1d`
/// (`[N, C]` or `[N, C, L]`) and `BatchNorm2d` (`[N, C, H, W]`).
///
/// Training normalises with the batch's statistics (biased variance) and updates the running
/// statistics with `momentum` (unbiased variance); evaluation uses the running statistics.
open class BatchNorm: Module {
    @OptionalParameter public var weight: Tensor?
    @OptionalParameter public var bias: Tensor?
    /// Running statistics, nil with `trackRunningStats: false` (as in PyTorch, which then
    /// registers none and normalises with batch statistics in evaluation too).
    @OptionalBuffer public var runningMean: Tensor?
    @OptionalBuffer public var runningVar: Tensor?
    @OptionalBuffer public var numBatchesTracked: Tensor?
    public let numFeatures: Int, eps: Double, momentum: Double, trackRunningStats: Bool
    let expectedRanks: [Int]

    init(numFeatures: Int, eps: Double, momentum: Double, affine: Bool, trackRunningStats: Bool, ranks: [Int]) {
        requireLayer("BatchNorm", ("numFeatures", numFeatures, 1))
        require(eps > 0, "BatchNorm: eps must be positive, got \(eps)")
        self.numFeatures = numFeatures
        self.eps = eps
        self.momentum = momentum
        self.trackRunningStats = trackRunningStats
        self.expectedRanks = ranks
        _weight = OptionalParameter(wrappedValue: affine ? Tensor.ones([numFeatures]) : nil)
        _bias = OptionalParameter(wrappedValue: affine ? Tensor.zeros([numFeatures]) : nil)
        _runningMean = OptionalBuffer(wrappedValue: trackRunningStats ? Tensor.zeros([numFeatures]) : nil)
        _runningVar = OptionalBuffer(wrappedValue: trackRunningStats ? Tensor.ones([numFeatures]) : nil)
        _numBatchesTracked = OptionalBuffer(wrappedValue: trackRunningStats ? Tensor(indices: [0], shape: []) : nil)
        super.init()
    }

    open override func forward(_ x: Tensor) -> Tensor {
        require(expectedRanks.contains(x.rank) && x.shape[1] == numFeatures,
                     "\(type(of: self))(\(numFeatures)) expects input of rank \(expectedRanks.map(String.init).joined(separator: " or ")) with \(numFeatures) channels in dimension 1, got \(x.shape)")
        if isTraining, let n = numBatchesTracked { noGrad { n.copy_(n + 1) } }
        // Without running statistics, evaluation normalises with the batch's, as PyTorch does.
        return x.batchNorm(runningMean: runningMean, runningVar: runningVar,
                           weight: weight, bias: bias, training: isTraining || runningMean == nil, momentum: momentum, eps: eps)
    }

    open override var extraDescription: String { "\(numFeatures), eps=\(eps), momentum=\(momentum)" }
}

public final class BatchNorm1d: BatchNorm {
    public init(numFeatures: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true,
                trackRunningStats: Bool = true) {
        super.init(numFeatures: numFeatures, eps: eps, momentum: momentum, affine: affine,
                   trackRunningStats: trackRunningStats, ranks: [2, 3])
    }
}

public final class BatchNorm2d: BatchNorm {
    public init(numFeatures: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true,
                trackRunningStats: Bool = true) {
        super.init(numFeatures: numFeatures, eps: eps, momentum: momentum, affine: affine,
                   trackRunningStats: trackRunningStats, ranks: [4])
    }
}

/// Normalises over the trailing `normalizedShape` dimensions, like `torch.nn.LayerNorm` (one
/// fused op forward and backward); `bias: false` keeps the scale only.
public final class LayerNorm: Module {
    @OptionalParameter public var weight: Tensor?
    @OptionalParameter public var bias: Tensor?
    public let normalizedShape: [Int], eps: Double

    public init(normalizedShape: [Int], eps: Double = 1e-5, elementwiseAffine: Bool = true, bias: Bool = true) {
        require(!normalizedShape.isEmpty && normalizedShape.allSatisfy { $0 > 0 },
                "LayerNorm: normalizedShape must be non-empty positive sizes, got \(normalizedShape)")
        self.normalizedShape = normalizedShape
        self.eps = eps
        _weight = OptionalParameter(wrappedValue: elementwiseAffine ? Tensor.ones(normalizedShape) : nil)
        _bias = OptionalParameter(wrappedValue: elementwiseAffine && bias ? Tensor.zeros(normalizedShape) : nil)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        require(Array(x.shape.suffix(normalizedShape.count)) == normalizedShape,
                     "LayerNorm(\(normalizedShape)) got input of shape \(x.shape); its trailing dimensions must be \(normalizedShape)")
        return x.layerNorm(normalizedShape, weight: weight, bias: bias, eps: eps)
    }

    public override var extraDescription: String { "\(normalizedShape), eps=\(eps)" }
}

/// Root-mean-square normalisation over the trailing `normalizedShape` dimensions, like
/// `torch.nn.RMSNorm`: `x / sqrt(mean(x²) + eps) * weight`; `eps` nil is the dtype's epsilon.
public final class RMSNorm: Module {
    @OptionalParameter public var weight: Tensor?
    public let normalizedShape: [Int], eps: Double?

    public init(normalizedShape: [Int], eps: Double? = nil, elementwiseAffine: Bool = true) {
        require(!normalizedShape.isEmpty && normalizedShape.allSatisfy { $0 > 0 },
                "RMSNorm: normalizedShape must be non-empty positive sizes, got \(normalizedShape)")
        self.normalizedShape = normalizedShape
        self.eps = eps
        _weight = OptionalParameter(wrappedValue: elementwiseAffine ? Tensor.ones(normalizedShape) : nil)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor { x.rmsNorm(normalizedShape, weight: weight, eps: eps) }

    public override var extraDescription: String { "\(normalizedShape), eps=\(eps.map { "\($0)" } ?? "None")" }
}

/// Normalises groups of channels per sample, like `torch.nn.GroupNorm`.
public final class GroupNorm: Module {
    @OptionalParameter public var weight: Tensor?
    @OptionalParameter public var bias: Tensor?
    public let numGroups: Int, numChannels: Int, eps: Double

    public init(numGroups: Int, numChannels: Int, eps: Double = 1e-5, affine: Bool = true) {
        require(numChannels % numGroups == 0, "GroupNorm: \(numChannels) channels cannot be split into \(numGroups) groups")
        self.numGroups = numGroups
        self.numChannels = numChannels
        self.eps = eps
        _weight = OptionalParameter(wrappedValue: affine ? Tensor.ones([numChannels]) : nil)
        _bias = OptionalParameter(wrappedValue: affine ? Tensor.zeros([numChannels]) : nil)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        require(x.rank >= 2 && x.shape[1] == numChannels, "GroupNorm(\(numGroups), \(numChannels)) got input \(x.shape)")
        let grouped = x.reshape([x.shape[0], numGroups, -1])
        let mean = grouped.mean(dim: 2, keepDim: true)
        let variance = grouped.variance(dims: [2], correction: 0, keepDim: true)
        var y = ((grouped - mean) * (variance + x.scalarLike(eps)).rsqrt()).reshape(x.shape)
        let shape = [1, numChannels] + [Int](repeating: 1, count: x.rank - 2)
        if let weight { y = y * weight.reshape(shape) }
        if let bias { y = y + bias.reshape(shape) }
        return y
    }
}
