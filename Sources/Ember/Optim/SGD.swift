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
        let momentum = group["momentum"]
        let first = momentum != 0 && state["momentum_buffer"] == nil
        if first { state["momentum_buffer"] = Tensor.zerosLike(p) }
        Kernels.sgd(p, gradient, buffer: momentum != 0 ? state["momentum_buffer"] : nil, .init(
            lr: group.learningRate, momentum: momentum, dampening: group["dampening"], weightDecay: group["weight_decay"],
            nesterov: group["nesterov"] != 0, maximize: group["maximize"] != 0, firstStep: first))
    }
}
