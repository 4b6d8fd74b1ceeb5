/// RMSprop with optional momentum and centering, with PyTorch's update rule:
/// `s = α·s + (1−α)·g²; a = √(s − ḡ²) (centered) or √s, + ε; p −= lr·g/a` (through a momentum
/// buffer when momentum > 0).
public final class RMSprop: Optimizer {
    /// One group's hyperparameters (PyTorch's keys: `alpha`, `eps`, `weight_decay`, `momentum`,
    /// `centered`, `maximize`).
    public struct Hyperparameters: TabulatedHyperparameters, Equatable {
        public var alpha = 0.99, eps = 1e-8, weightDecay = 0.0, momentum = 0.0
        public var centered = false, maximize = false

        public static var fields: [HyperparameterField<Self>] {
            [.number("alpha", \.alpha), .number("eps", \.eps), .number("weight_decay", \.weightDecay), .number("momentum", \.momentum),
             .flag("centered", \.centered), .flag("maximize", \.maximize)]
        }

        public init() {}

        public init(alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0, momentum: Double = 0, centered: Bool = false, maximize: Bool = false) {
            (self.alpha, self.eps, self.weightDecay, self.momentum, self.centered, self.maximize) = (alpha, eps, weightDecay, momentum, centered, maximize)
        }
    }

    public convenience init(parameters: [Tensor], learningRate: Double = 0.01, alpha: Double = 0.99, eps: Double = 1e-8,
                            weightDecay: Double = 0, momentum: Double = 0, centered: Bool = false, maximize: Bool = false) {
        self.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate, hyperparameters: Hyperparameters(
            alpha: alpha, eps: eps, weightDecay: weightDecay, momentum: momentum, centered: centered, maximize: maximize))])
    }

    /// Groups of their own; each needs every key of `Hyperparameters`.
    public override init(paramGroups: [ParamGroup]) {
        super.init(paramGroups: paramGroups)
        checkGroups(Hyperparameters.self)
    }

    public override var updatesElementwise: Bool { true }

    public override func update(parameter p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        let h = group.hyperparameters(Hyperparameters.self)
        var g = h.maximize ? -gradient : gradient
        if h.weightDecay != 0 { g = g + p * p.scalarLike(h.weightDecay) }
        _ = nextStep(&state)
        let alpha = h.alpha
        let square = (state["square_avg"] ?? Tensor.zerosLike(p)) * p.scalarLike(alpha) + g * g * g.scalarLike(1 - alpha)
        state["square_avg"] = square
        var average: Tensor
        if h.centered {
            let mean = (state["grad_avg"] ?? Tensor.zerosLike(p)) * p.scalarLike(alpha) + g * g.scalarLike(1 - alpha)
            state["grad_avg"] = mean
            average = (square - mean * mean).sqrt()
        } else {
            average = square.sqrt()
        }
        average = average + p.scalarLike(h.eps)
        let lr = p.scalarLike(group.learningRate)
        if h.momentum > 0 {
            let buffer = (state["momentum_buffer"] ?? Tensor.zerosLike(p)) * p.scalarLike(h.momentum) + g / average
            state["momentum_buffer"] = buffer
            p.copy_(p - buffer * lr)
        } else {
            p.copy_(p - g / average * lr)
        }
    }
}

/// Adagrad, with PyTorch's update rule: `s += g²; p −= lr/(1 + (t−1)·decay) · g/(√s + ε)`.
public final class Adagrad: Optimizer {
    /// One group's hyperparameters (PyTorch's keys: `lr_decay`, `weight_decay`,
    /// `initial_accumulator_value`, `eps`, `maximize`).
    public struct Hyperparameters: TabulatedHyperparameters, Equatable {
        public var lrDecay = 0.0, weightDecay = 0.0, initialAccumulatorValue = 0.0, eps = 1e-10
        public var maximize = false

        public static var fields: [HyperparameterField<Self>] {
            [.number("lr_decay", \.lrDecay), .number("weight_decay", \.weightDecay),
             .number("initial_accumulator_value", \.initialAccumulatorValue), .number("eps", \.eps), .flag("maximize", \.maximize)]
        }

        public init() {}

        public init(lrDecay: Double = 0, weightDecay: Double = 0, initialAccumulatorValue: Double = 0, eps: Double = 1e-10, maximize: Bool = false) {
            (self.lrDecay, self.weightDecay, self.initialAccumulatorValue, self.eps, self.maximize) = (lrDecay, weightDecay, initialAccumulatorValue, eps, maximize)
        }
    }

    public convenience init(parameters: [Tensor], learningRate: Double = 0.01, lrDecay: Double = 0, weightDecay: Double = 0,
                            initialAccumulatorValue: Double = 0, eps: Double = 1e-10, maximize: Bool = false) {
        self.init(paramGroups: [ParamGroup(params: parameters, learningRate: learningRate, hyperparameters: Hyperparameters(
            lrDecay: lrDecay, weightDecay: weightDecay, initialAccumulatorValue: initialAccumulatorValue, eps: eps, maximize: maximize))])
    }

    /// Groups of their own; each needs every key of `Hyperparameters`.
    public override init(paramGroups: [ParamGroup]) {
        super.init(paramGroups: paramGroups)
        checkGroups(Hyperparameters.self)
    }

    public override var updatesElementwise: Bool { true }

    public override func update(parameter p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        let h = group.hyperparameters(Hyperparameters.self)
        var g = h.maximize ? -gradient : gradient
        if h.weightDecay != 0 { g = g + p * p.scalarLike(h.weightDecay) }
        let step = nextStep(&state)
        let clr = group.learningRate / (1 + (step - 1) * h.lrDecay)
        let sum = (state["sum"] ?? Tensor.full(p.shape, h.initialAccumulatorValue, dtype: p.dtype)) + g * g
        state["sum"] = sum
        p.copy_(p - g / (sum.sqrt() + p.scalarLike(h.eps)) * p.scalarLike(clr))
    }
}
