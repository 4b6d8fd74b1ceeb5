/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay,
/// with PyTorch's update rule:
/// `g += wd·p; b = μ·b + (1−τ)·g (b = g at first); g = nesterov ? g + μ·b : b; p −= lr·g`.
public final class SGD: Optimizer {
    public init(parameters: [Tensor], learningRate: Double = 0.001, momentum: Double = 0, dampening: Double = 0,
                weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and zero dampening")
        super.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate, options: [
            "momentum": momentum, "dampening": dampening, "weight_decay": weightDecay,
            "nesterov": nesterov ? 1 : 0, "maximize": maximize ? 1 : 0,
        ])])
    }

    public override init(paramGroups: [ParamGroup]) { super.init(paramGroups: paramGroups) }

    public override func update(parameter p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        var g = group["maximize"] != 0 ? -gradient : gradient
        if group["weight_decay"] != 0 { g = g + p * p.scalarLike(group["weight_decay"]) }
        let momentum = group["momentum"]
        if momentum != 0 {
            let buffer: Tensor
            if let b = state["momentum_buffer"] {
                buffer = b * b.scalarLike(momentum) + g * g.scalarLike(1 - group["dampening"])
            } else {
                buffer = g.clone()
            }
            state["momentum_buffer"] = buffer
            g = group["nesterov"] != 0 ? g + buffer * buffer.scalarLike(momentum) : buffer
        }
        p.copy_(p - g * g.scalarLike(group.learningRate))
    }
}
