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
        var g = group["maximize"] != 0 ? -gradient : gradient
        let lr = group.learningRate, wd = group["weight_decay"], b1 = group["beta1"], b2 = group["beta2"]
        var param = p
        if wd != 0 {
            if decoupledWeightDecay {
                param = p * p.scalarLike(1 - lr * wd)
            } else {
                g = g + p * p.scalarLike(wd)
            }
        }
        let step = nextStep(&state)
        let m = (state["exp_avg"] ?? Tensor.zerosLike(p)) * p.scalarLike(b1) + g * g.scalarLike(1 - b1)
        let v = (state["exp_avg_sq"] ?? Tensor.zerosLike(p)) * p.scalarLike(b2) + g * g * g.scalarLike(1 - b2)
        state["exp_avg"] = m
        state["exp_avg_sq"] = v
        let bias1 = 1 - Foundation.pow(b1, step), bias2 = 1 - Foundation.pow(b2, step)
        var second = v
        if group["amsgrad"] != 0 {
            second = state["max_exp_avg_sq"].map { $0.maximum(v) } ?? v
            state["max_exp_avg_sq"] = second
        }
        let denominator = second.sqrt() / p.scalarLike(bias2.squareRoot()) + p.scalarLike(group["eps"])
        p.copy_(param - m / denominator * p.scalarLike(lr / bias1))
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
