/// Adam (and AdamW's decoupled weight decay), with PyTorch's update rule:
/// `m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`,
/// with `v` replaced by its running maximum under AMSGrad.
public class Adam: Optimizer {
    let decoupledWeightDecay: Bool

    public init(parameters: [Tensor], learningRate: Double = 0.001, betas: (Double, Double) = (0.9, 0.999),
                eps: Double = 1e-8, weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false) {
        decoupledWeightDecay = false
        super.init(paramGroups: [Adam.group(parameters, learningRate, betas, eps, weightDecay, amsgrad, maximize)])
    }

    init(parameters: [Tensor], learningRate: Double, betas: (Double, Double), eps: Double, weightDecay: Double,
         amsgrad: Bool, maximize: Bool, decoupled: Bool) {
        decoupledWeightDecay = decoupled
        super.init(paramGroups: [Adam.group(parameters, learningRate, betas, eps, weightDecay, amsgrad, maximize)])
    }

    static func group(_ params: [Tensor], _ lr: Double, _ betas: (Double, Double), _ eps: Double, _ wd: Double,
                      _ amsgrad: Bool, _ maximize: Bool) -> ParamGroup {
        ParamGroup(params: params, learningRate: lr, options: [
            "beta1": betas.0, "beta2": betas.1, "eps": eps, "weight_decay": wd,
            "amsgrad": amsgrad ? 1 : 0, "maximize": maximize ? 1 : 0,
        ])
    }

    public override func update(parameter p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        let step = nextStep(&state)
        if state["exp_avg"] == nil {
            state["exp_avg"] = Tensor.zerosLike(p)
            state["exp_avg_sq"] = Tensor.zerosLike(p)
        }
        let amsgrad = group["amsgrad"] != 0
        if amsgrad && state["max_exp_avg_sq"] == nil { state["max_exp_avg_sq"] = Tensor.zerosLike(p) }
        Kernels.adam(p, gradient, m: state["exp_avg"]!, v: state["exp_avg_sq"]!, vMax: amsgrad ? state["max_exp_avg_sq"] : nil, .init(
            lr: group.learningRate, beta1: group["beta1"], beta2: group["beta2"], eps: group["eps"],
            weightDecay: group["weight_decay"], decoupled: decoupledWeightDecay, amsgrad: amsgrad,
            maximize: group["maximize"] != 0, step: step))
    }
}

/// Adam with decoupled weight decay (`p *= 1 − lr·wd` before the Adam step), like `torch.optim.AdamW`.
public final class AdamW: Adam {
    public override init(parameters: [Tensor], learningRate: Double = 0.001, betas: (Double, Double) = (0.9, 0.999),
                eps: Double = 1e-8, weightDecay: Double = 0.01, amsgrad: Bool = false, maximize: Bool = false) {
        super.init(parameters: parameters, learningRate: learningRate, betas: betas, eps: eps, weightDecay: weightDecay,
                   amsgrad: amsgrad, maximize: maximize, decoupled: true)
    }
}

import Foundation
