/// How a loss combines per-element values.
public enum Reduction: String, Sendable {
    case none, mean, sum
    /// KLDivLoss only: the sum divided by the batch size (the mathematically correct KL mean).
    case batchMean = "batchmean"

    func apply(_ loss: Tensor, batchSize: Int? = nil) -> Tensor {
        switch self {
        case .none: return loss
        case .mean: return loss.mean()
        case .sum: return loss.sum()
        case .batchMean: return loss.sum() / loss.scalarLike(Double(batchSize ?? 1))
        }
    }
}

/// Loss functions, as `torch.nn.functional` has them; the loss modules call these.
public enum Losses {
    private static func checkSameShape(_ input: Tensor, _ target: Tensor, _ name: String) {
        require(input.shape == target.shape,
                     "\(name): input shape \(input.shape) and target shape \(target.shape) differ")
    }

    public static func mse(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
        checkSameShape(input, target, "MSELoss")
        let d = input - target
        return reduction.apply(d * d)
    }

    public static func l1(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
        checkSameShape(input, target, "L1Loss")
        return reduction.apply((input - target).abs())
    }

    /// Quadratic below `beta`, linear above, as `smooth_l1_loss`.
    public static func smoothL1(_ input: Tensor, _ target: Tensor, beta: Double = 1, reduction: Reduction = .mean) -> Tensor {
        checkSameShape(input, target, "SmoothL1Loss")
        let d = (input - target).abs()
        guard beta > 0 else { return reduction.apply(d) }
        let quadratic = d * d * d.scalarLike(0.5 / beta)
        return reduction.apply(Tensor.where(d.lt(beta), quadratic, d - d.scalarLike(0.5 * beta)))
    }

    /// Quadratic below `delta`, `delta·(|d| − delta/2)` above, as `huber_loss`.
    public static func huber(_ input: Tensor, _ target: Tensor, delta: Double = 1, reduction: Reduction = .mean) -> Tensor {
        checkSameShape(input, target, "HuberLoss")
        let d = (input - target).abs()
        let linear = (d - d.scalarLike(0.5 * delta)) * d.scalarLike(delta)
        return reduction.apply(Tensor.where(d.le(delta), d * d * 0.5, linear))
    }

    /// Negative log-likelihood of class indices: `input` holds log-probabilities `[N, C, ...]`,
    /// `target` int64 class indices `[N, ...]`.
    public static func nll(_ input: Tensor, _ target: Tensor, weight: Tensor? = nil, ignoreIndex: Int = -100,
                           reduction: Reduction = .mean) -> Tensor {
        classification(logProbabilities: input, target: target, weight: weight, ignoreIndex: ignoreIndex,
                       reduction: reduction, labelSmoothing: 0, name: "NLLLoss")
    }

    /// Cross-entropy of logits `[N, C, ...]` against int64 class indices `[N, ...]`, with optional
    /// class weights, an ignored index and label smoothing, as `cross_entropy`.
    public static func crossEntropy(_ input: Tensor, _ target: Tensor, weight: Tensor? = nil, ignoreIndex: Int = -100,
                                    reduction: Reduction = .mean, labelSmoothing: Double = 0) -> Tensor {
        require(input.rank >= 2, "CrossEntropyLoss expects logits [N, C, ...], got \(input.shape)")
        if input.rank == 2 && weight == nil && labelSmoothing == 0 && target.dtype == .int64 && target.shape == [input.shape[0]] {
            let labels = target.intScalars
            let classes = input.shape[1]
            for (i, t) in labels.enumerated() where t != ignoreIndex {
                require(t >= 0 && t < classes, "CrossEntropyLoss: target \(t) at position \(i) is out of range for \(classes) classes")
            }
            return fusedCrossEntropy(input, labels, ignoreIndex: ignoreIndex, reduction: reduction)
        }
        return classification(logProbabilities: input.logSoftmax(dim: 1), target: target, weight: weight,
                               ignoreIndex: ignoreIndex, reduction: reduction, labelSmoothing: labelSmoothing,
                               name: "CrossEntropyLoss")
    }

    static func classification(logProbabilities logp: Tensor, target: Tensor, weight: Tensor?, ignoreIndex: Int,
                                       reduction: Reduction, labelSmoothing: Double, name: String) -> Tensor {
        let classes = logp.shape[1]
        require(target.dtype == .int64, "\(name) expects int64 class indices as target, got \(target.dtype)")
        require(target.shape == [logp.shape[0]] + Array(logp.shape.dropFirst(2)),
                     "\(name): input \(logp.shape) needs a target of shape \([logp.shape[0]] + Array(logp.shape.dropFirst(2))), got \(target.shape)")
        require(weight == nil || weight!.shape == [classes], "\(name): weight must have shape [\(classes)], got \(weight!.shape)")
        let labels = target.intScalars
        for (i, t) in labels.enumerated() where t != ignoreIndex {
            require(t >= 0 && t < classes, "\(name): target \(t) at position \(i) is out of range for \(classes) classes")
        }
        // Ignored positions gather class 0 and are then masked out.
        let ignored = Tensor(labels.map { $0 == ignoreIndex ? 0.0 : 1.0 }, shape: target.shape, dtype: logp.dtype)
        let safe = Tensor(indices: labels.map { $0 == ignoreIndex ? 0 : $0 }, shape: target.shape)
        let picked = logp.gather(dim: 1, index: safe.unsqueeze(1)).squeeze(1)
        let w = (weight.map { $0.to(logp.dtype).indexSelect(dim: 0, index: safe.flatten()).reshape(target.shape) }
            ?? Tensor.onesLike(ignored)) * ignored
        var loss = -picked * w
        var smooth: Tensor? = nil
        if labelSmoothing > 0 {
            let classShape = [1, classes] + [Int](repeating: 1, count: logp.rank - 2)
            let weighted = weight.map { logp * $0.to(logp.dtype).reshape(classShape) } ?? logp
            smooth = -weighted.sum(dim: 1) * ignored
        }
        switch reduction {
        case .mean:
            let total = w.sum()
            loss = loss.sum() / total
            smooth = smooth.map { $0.sum() / total }
        case .sum, .batchMean:
            loss = loss.sum()
            smooth = smooth?.sum()
        case .none:
            break
        }
        guard let smooth else { return loss }
        return loss * loss.scalarLike(1 - labelSmoothing) + smooth * loss.scalarLike(labelSmoothing / Double(classes))
    }

    /// Binary cross-entropy of probabilities, logs clamped at -100 as in PyTorch.
    public static func binaryCrossEntropy(_ input: Tensor, _ target: Tensor, weight: Tensor? = nil,
                                          reduction: Reduction = .mean) -> Tensor {
        checkSameShape(input, target, "BCELoss")
        let logP = input.log().clamp(min: -100)
        let logQ = (1 - input).log().clamp(min: -100)
        var loss = -(target * logP + (1 - target) * logQ)
        if let weight { loss = loss * weight }
        return reduction.apply(loss)
    }

    /// Binary cross-entropy of logits, computed stably; `posWeight` weighs positive examples per class.
    public static func binaryCrossEntropyWithLogits(_ input: Tensor, _ target: Tensor, weight: Tensor? = nil,
                                                    posWeight: Tensor? = nil, reduction: Reduction = .mean) -> Tensor {
        checkSameShape(input, target, "BCEWithLogitsLoss")
        let perClass = posWeight.map { $0.count == 1 || $0.shape == [input.shape.last ?? 1] } ?? true
        if weight == nil && perClass && input.dtype.isFloatingPoint && !target.requiresGrad && reduction != .batchMean {
            let pw = posWeight.map { $0.count == 1 ? $0.expand([input.shape.last ?? 1]) : $0 }
            return fusedBCEWithLogits(input, target, posWeight: pw, reduction: reduction)
        }
        return compositeBCEWithLogits(input, target, weight: weight, posWeight: posWeight, reduction: reduction)
    }

    /// BCE with logits from differentiable ops (any weights; what the fused op falls back to).
    static func compositeBCEWithLogits(_ input: Tensor, _ target: Tensor, weight: Tensor?, posWeight: Tensor?,
                                       reduction: Reduction) -> Tensor {
        // log(1 + exp(-|x|)) + max(-x, 0) is log(1 + exp(-x)) without overflow.
        let logSigmoidNeg = (-input.abs()).softplus() + (-input).relu()
        let logWeight = posWeight.map { ($0 - 1) * target + 1 } ?? Tensor.onesLike(target)
        var loss = (1 - target) * input + logWeight * logSigmoidNeg
        if let weight { loss = loss * weight }
        return reduction.apply(loss)
    }

    /// Kullback-Leibler divergence with `input` as log-probabilities; `target` probabilities (or
    /// log-probabilities when `logTarget`).
    public static func klDiv(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean, logTarget: Bool = false) -> Tensor {
        checkSameShape(input, target, "KLDivLoss")
        let loss: Tensor
        if logTarget {
            loss = target.exp() * (target - input)
        } else {
            // x log x is 0 at x = 0.
            let positive = target.gt(0)
            let safeLog = Tensor.where(positive, target, Tensor.onesLike(target)).log()
            loss = target * (safeLog - input) * positive
        }
        return reduction.apply(loss, batchSize: input.rank > 0 ? input.shape[0] : 1)
    }
}

/// A loss as a module: `criterion(output, target)`.
public protocol Loss {
    func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor
}

public struct MSELoss: Loss {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor { Losses.mse(input, target, reduction: reduction) }
}

public struct L1Loss: Loss {
    public var reduction: Reduction
    public init(reduction: Reduction = .mean) { self.reduction = reduction }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor { Losses.l1(input, target, reduction: reduction) }
}

public struct SmoothL1Loss: Loss {
    public var reduction: Reduction, beta: Double
    public init(reduction: Reduction = .mean, beta: Double = 1) { self.reduction = reduction; self.beta = beta }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        Losses.smoothL1(input, target, beta: beta, reduction: reduction)
    }
}

public struct HuberLoss: Loss {
    public var reduction: Reduction, delta: Double
    public init(reduction: Reduction = .mean, delta: Double = 1) { self.reduction = reduction; self.delta = delta }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        Losses.huber(input, target, delta: delta, reduction: reduction)
    }
}

public struct CrossEntropyLoss: Loss {
    public var weight: Tensor?, ignoreIndex: Int, reduction: Reduction, labelSmoothing: Double
    public init(weight: Tensor? = nil, ignoreIndex: Int = -100, reduction: Reduction = .mean, labelSmoothing: Double = 0) {
        self.weight = weight
        self.ignoreIndex = ignoreIndex
        self.reduction = reduction
        self.labelSmoothing = labelSmoothing
    }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        Losses.crossEntropy(input, target, weight: weight, ignoreIndex: ignoreIndex, reduction: reduction,
                            labelSmoothing: labelSmoothing)
    }
}

public struct NLLLoss: Loss {
    public var weight: Tensor?, ignoreIndex: Int, reduction: Reduction
    public init(weight: Tensor? = nil, ignoreIndex: Int = -100, reduction: Reduction = .mean) {
        self.weight = weight
        self.ignoreIndex = ignoreIndex
        self.reduction = reduction
    }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        Losses.nll(input, target, weight: weight, ignoreIndex: ignoreIndex, reduction: reduction)
    }
}

public struct BCELoss: Loss {
    public var weight: Tensor?, reduction: Reduction
    public init(weight: Tensor? = nil, reduction: Reduction = .mean) { self.weight = weight; self.reduction = reduction }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        Losses.binaryCrossEntropy(input, target, weight: weight, reduction: reduction)
    }
}

public struct BCEWithLogitsLoss: Loss {
    public var weight: Tensor?, posWeight: Tensor?, reduction: Reduction
    public init(weight: Tensor? = nil, reduction: Reduction = .mean, posWeight: Tensor? = nil) {
        self.weight = weight
        self.reduction = reduction
        self.posWeight = posWeight
    }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        Losses.binaryCrossEntropyWithLogits(input, target, weight: weight, posWeight: posWeight, reduction: reduction)
    }
}

public struct KLDivLoss: Loss {
    public var reduction: Reduction, logTarget: Bool
    public init(reduction: Reduction = .mean, logTarget: Bool = false) { self.reduction = reduction; self.logTarget = logTarget }
    public func callAsFunction(_ input: Tensor, _ target: Tensor) -> Tensor {
        Losses.klDiv(input, target, reduction: reduction, logTarget: logTarget)
    }
}
