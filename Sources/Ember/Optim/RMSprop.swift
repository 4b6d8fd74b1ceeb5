/// RMSprop with optional momentum and centering, with PyTorch's update rule:
/// `s = α·s + (1−α)·g²; a = √(s − ḡ²) (centered) or √s, + ε; p −= lr·g/a` (through a momentum
/// buffer when momentum > 0).
public final class RMSprop: Optimizer {
    public init(parameters: [Tensor], learningRate: Double = 0.01, alpha: Double = 0.99, eps: Double = 1e-8,
                weightDecay: Double = 0, momentum: Double = 0, centered: Bool = false, maximize: Bool = false) {
        super.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate, options: [
            "alpha": alpha, "eps": eps, "weight_decay": weightDecay, "momentum": momentum,
            "centered": centered ? 1 : 0, "maximize": maximize ? 1 : 0,
        ])])
    }

    public override func update(parameter p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        var g = group["maximize"] != 0 ? -gradient : gradient
        if group["weight_decay"] != 0 { g = g + p * p.scalarLike(group["weight_decay"]) }
        _ = nextStep(&state)
        let alpha = group["alpha"]
        let square = (state["square_avg"] ?? Tensor.zerosLike(p)) * p.scalarLike(alpha) + g * g * g.scalarLike(1 - alpha)
        state["square_avg"] = square
        var average: Tensor
        if group["centered"] != 0 {
            let mean = (state["grad_avg"] ?? Tensor.zerosLike(p)) * p.scalarLike(alpha) + g * g.scalarLike(1 - alpha)
            state["grad_avg"] = mean
            average = (square - mean * mean).sqrt()
        } else {
            average = square.sqrt()
        }
        average = average + p.scalarLike(group["eps"])
        let lr = p.scalarLike(group.learningRate)
        if group["momentum"] > 0 {
            let buffer = (state["momentum_buffer"] ?? Tensor.zerosLike(p)) * p.scalarLike(group["momentum"]) + g / average
            state["momentum_buffer"] = buffer
            p.copy_(p - buffer * lr)
        } else {
            p.copy_(p - g / average * lr)
        }
    }
}

/// Adagrad, with PyTorch's update rule: `s += g²; p −= lr/(1 + (t−1)·decay) · g/(√s + ε)`.
public final class Adagrad: Optimizer {
    public init(parameters: [Tensor], learningRate: Double = 0.01, lrDecay: Double = 0, weightDecay: Double = 0,
                initialAccumulatorValue: Double = 0, eps: Double = 1e-10, maximize: Bool = false) {
        super.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate, options: [
            "lr_decay": lrDecay, "weight_decay": weightDecay, "initial_accumulator_value": initialAccumulatorValue,
            "eps": eps, "maximize": maximize ? 1 : 0,
        ])])
    }

    public override func update(parameter p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        var g = group["maximize"] != 0 ? -gradient : gradient
        if group["weight_decay"] != 0 { g = g + p * p.scalarLike(group["weight_decay"]) }
        let step = nextStep(&state)
        let clr = group.learningRate / (1 + (step - 1) * group["lr_decay"])
        let sum = (state["sum"] ?? Tensor.full(p.shape, group["initial_accumulator_value"], dtype: p.dtype)) + g * g
        state["sum"] = sum
        p.copy_(p - g / (sum.sqrt() + p.scalarLike(group["eps"])) * p.scalarLike(clr))
    }
}
