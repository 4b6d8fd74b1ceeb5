/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay,
/// with PyTorch's update rule:
/// `g += wd·p; b = μ·b + (1−τ)·g (b = g at first); g = nesterov ? g + μ·b : b; p −= lr·g`.
public final class SGD: Optimizer {
    /// One group's hyperparameters (PyTorch's keys: `momentum`, `dampening`, `weight_decay`,
    /// `nesterov`, `maximize`).
    public struct Hyperparameters: TabulatedHyperparameters, Equatable {
        public var momentum = 0.0, dampening = 0.0, weightDecay = 0.0
        public var nesterov = false, maximize = false

        public static var fields: [HyperparameterField<Self>] {
            [.number("momentum", \.momentum), .number("dampening", \.dampening), .number("weight_decay", \.weightDecay),
             .flag("nesterov", \.nesterov), .flag("maximize", \.maximize)]
        }

        public init() {}

        public init(momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false) {
            (self.momentum, self.dampening, self.weightDecay, self.nesterov, self.maximize) = (momentum, dampening, weightDecay, nesterov, maximize)
        }
    }

    public convenience init(parameters: [Tensor], learningRate: Double = 0.001, momentum: Double = 0, dampening: Double = 0,
                            weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false) {
        self.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate, hyperparameters: Hyperparameters(
            momentum: momentum, dampening: dampening, weightDecay: weightDecay, nesterov: nesterov, maximize: maximize))])
    }

    /// Groups that may name only some options (`ParamGroup(params: b, options: ["lr": 0.1])`):
    /// the rest are these arguments, as in `torch.optim.SGD(groups, lr=0.01, momentum=0.9)`.
    /// - Throws: `OptimizerError` naming a key SGD does not have.
    public convenience init(paramGroups: [ParamGroup], learningRate: Double, momentum: Double = 0, dampening: Double = 0,
                            weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false) throws {
        let defaults = Hyperparameters(momentum: momentum, dampening: dampening, weightDecay: weightDecay, nesterov: nesterov, maximize: maximize)
        self.init(paramGroups: try Hyperparameters.completing(paramGroups, defaults: defaults, learningRate: learningRate, optimizer: "SGD"))
    }

    /// Groups of their own; each needs every key of `Hyperparameters`.
    public override init(paramGroups: [ParamGroup]) {
        super.init(paramGroups: paramGroups)
        checkGroups(Hyperparameters.self)
        for g in paramGroups {
            let h = g.hyperparameters(Hyperparameters.self)
            if h.nesterov && (h.momentum <= 0 || h.dampening != 0) { fatalError("Nesterov momentum needs momentum > 0 and zero dampening") }
        }
    }

    public override var updatesElementwise: Bool { true }

    public override func update(parameter p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        let h = group.hyperparameters(Hyperparameters.self)
        let first = h.momentum != 0 && state["momentum_buffer"] == nil
        if first { state["momentum_buffer"] = Tensor.zerosLike(p) }
        Kernels.sgd(p, gradient, buffer: h.momentum != 0 ? state["momentum_buffer"] : nil, .init(
            lr: group.learningRate, momentum: h.momentum, dampening: h.dampening, weightDecay: h.weightDecay,
            nesterov: h.nesterov, maximize: h.maximize, firstStep: first))
    }
}
