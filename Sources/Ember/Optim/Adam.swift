import Foundation
/// Adam (and AdamW's decoupled weight decay), with PyTorch's update rule:
/// `m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`,
/// with `v` replaced by its running maximum under AMSGrad.
public class Adam: Optimizer {
    /// One group's hyperparameters (PyTorch's keys, with the betas as `beta1` and `beta2`).
    public struct Hyperparameters: TabulatedHyperparameters, Equatable {
        public var beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.0
        public var amsgrad = false, maximize = false

        public static var fields: [HyperparameterField<Self>] {
            [.number("beta1", \.beta1), .number("beta2", \.beta2), .number("eps", \.eps), .number("weight_decay", \.weightDecay),
             .flag("amsgrad", \.amsgrad), .flag("maximize", \.maximize)]
        }

        public init() {}

        public init(betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8, weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false) {
            (beta1, beta2, self.eps, self.weightDecay, self.amsgrad, self.maximize) = (betas.0, betas.1, eps, weightDecay, amsgrad, maximize)
        }
    }

    let decoupledWeightDecay: Bool

    public convenience init(parameters: [Tensor], learningRate: Double = 0.001, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false) {
        self.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate, hyperparameters: Hyperparameters(
            betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad, maximize: maximize))])
    }

    /// Groups that may name only some options; the rest are these arguments (PyTorch's
    /// `torch.optim.Adam(groups, lr=…, betas=…)`).
    /// - Throws: `OptimizerError` naming a key Adam does not have.
    public convenience init(paramGroups: [ParamGroup], learningRate: Double, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                            weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false) throws {
        let defaults = Hyperparameters(betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad, maximize: maximize)
        self.init(paramGroups: try Hyperparameters.completing(paramGroups, defaults: defaults, learningRate: learningRate, optimizer: "Adam"))
    }

    /// Groups of their own; each needs every key of `Hyperparameters`.
    public init(paramGroups: [ParamGroup], decoupledWeightDecay: Bool = false) {
        self.decoupledWeightDecay = decoupledWeightDecay
        super.init(paramGroups: paramGroups)
        checkGroups(Hyperparameters.self)
    }

    public override var updatesElementwise: Bool { true }

    public override func update(parameter p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        let h = group.hyperparameters(Hyperparameters.self)
        let step = nextStep(&state)
        if state["exp_avg"] == nil {
            state["exp_avg"] = Tensor.zerosLike(p)
            state["exp_avg_sq"] = Tensor.zerosLike(p)
        }
        if h.amsgrad && state["max_exp_avg_sq"] == nil { state["max_exp_avg_sq"] = Tensor.zerosLike(p) }
        Kernels.adam(p, gradient, m: state["exp_avg"]!, v: state["exp_avg_sq"]!, vMax: h.amsgrad ? state["max_exp_avg_sq"] : nil, .init(
            lr: group.learningRate, beta1: h.beta1, beta2: h.beta2, eps: h.eps,
            weightDecay: h.weightDecay, decoupled: decoupledWeightDecay, amsgrad: h.amsgrad,
            maximize: h.maximize, step: step))
    }
}

/// Adam with decoupled weight decay (`p *= 1 − lr·wd` before the Adam step), like `torch.optim.AdamW`.
public final class AdamW: Adam {
    public convenience init(parameters: [Tensor], learningRate: Double = 0.001, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0.01, amsgrad: Bool = false, maximize: Bool = false) {
        self.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate, hyperparameters: Hyperparameters(
            betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad, maximize: maximize))])
    }

    /// Groups of their own (weight decay per group, say 0 for biases and norms).
    public init(paramGroups: [ParamGroup]) {
        super.init(paramGroups: paramGroups, decoupledWeightDecay: true)
    }

    /// Groups that may name only some options; the rest are these arguments (AdamW's weight
    /// decay default is 0.01, as PyTorch's).
    public convenience init(paramGroups: [ParamGroup], learningRate: Double, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                            weightDecay: Double = 0.01, amsgrad: Bool = false, maximize: Bool = false) throws {
        let defaults = Hyperparameters(betas: betas, eps: eps, weightDecay: weightDecay, amsgrad: amsgrad, maximize: maximize)
        self.init(paramGroups: try Hyperparameters.completing(paramGroups, defaults: defaults, learningRate: learningRate, optimizer: "AdamW"))
    }
}
