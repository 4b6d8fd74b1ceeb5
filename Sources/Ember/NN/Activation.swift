/// Activation functions as modules, for `Sequential`.
public final class ReLU: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.relu() }
}

public final class Sigmoid: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.sigmoid() }
}

public final class Tanh: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.tanh() }
}

/// GELU, exact by default, or `GELU(approximate: "tanh")` as in GPT-2.
public final class GELU: Module {
    public let approximate: GELUApproximation
    public init(approximate: GELUApproximation = .none) {
        self.approximate = approximate
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor { x.gelu(approximate: approximate) }
}

public final class SiLU: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.silu() }
}

public final class LeakyReLU: Module {
    public let negativeSlope: Double
    public init(negativeSlope: Double = 0.01) {
        self.negativeSlope = negativeSlope
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor { x.leakyRelu(negativeSlope: negativeSlope) }
}

public final class ELU: Module {
    public let alpha: Double
    public init(alpha: Double = 1) {
        self.alpha = alpha
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor { x.elu(alpha: alpha) }
}

public final class Softplus: Module {
    public let beta: Double, threshold: Double
    public init(beta: Double = 1, threshold: Double = 20) {
        self.beta = beta
        self.threshold = threshold
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor { x.softplus(beta: beta, threshold: threshold) }
}

/// Leaky ReLU with a learned slope (one shared, or one per channel with `numParameters`).
public final class PReLU: Module {
    @Parameter public var weight: Tensor
    public init(numParameters: Int = 1, initValue: Double = 0.25) {
        _weight = Parameter(wrappedValue: Tensor.full([numParameters], initValue))
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor {
        // One slope per channel (dimension 1), broadcast over the rest.
        let slope = weight.count == 1 || x.rank < 2
            ? weight : weight.reshape([weight.count] + [Int](repeating: 1, count: x.rank - 2))
        return Tensor.where(x.gt(0), x, x * slope)
    }
}

public final class Softmax: Module {
    public let dim: Int
    public init(dim: Int) {
        self.dim = dim
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor { x.softmax(dim: dim) }
}

public final class LogSoftmax: Module {
    public let dim: Int
    public init(dim: Int) {
        self.dim = dim
        super.init()
    }
    public override func forward(_ x: Tensor) -> Tensor { x.logSoftmax(dim: dim) }
}
