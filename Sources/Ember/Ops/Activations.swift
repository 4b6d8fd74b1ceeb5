/// Activation functions, forward kernels in `Kernels.unary`, derivatives here.
extension Tensor {
    public func relu() -> Tensor { unaryOp(.relu, "ReluBackward") { x, _, g in g * x.gt(0) } }

    public func sigmoid() -> Tensor {
        unaryOp(.sigmoid, "SigmoidBackward") { _, y, g in
            let s = y()
            return g * s * (1 - s)
        }
    }

    public func tanh() -> Tensor {
        unaryOp(.tanh, "TanhBackward") { _, y, g in
            let t = y()
            return g * (1 - t * t)
        }
    }

    /// `max(0, x) + negativeSlope * min(0, x)`.
    public func leakyRelu(negativeSlope: Double = 0.01) -> Tensor {
        unaryOp(.leakyRelu(slope: negativeSlope), "LeakyReluBackward") { x, _, g in
            let positive = x.gt(0)
            return g * (positive + (1 - positive) * x.scalarLike(negativeSlope))
        }
    }

    /// `x` for positive inputs, `alpha * (exp(x) - 1)` otherwise.
    public func elu(alpha: Double = 1) -> Tensor {
        unaryOp(.elu(alpha: alpha), "EluBackward") { x, _, g in
            let positive = x.gt(0)
            return g * (positive + (1 - positive) * x.exp() * x.scalarLike(alpha))
        }
    }

    /// Gaussian error linear unit, exact form `x * Φ(x)` (PyTorch's default).
    public func gelu() -> Tensor {
        unaryOp(.gelu, "GeluBackward") { x, _, g in
            if x.takesFusedGradient(g) {
                return Kernels.geluBackward(g, x)
            }
            // Φ(x) + x φ(x), with φ the standard normal density.
            let cdf = (x * x.scalarLike(0.70710678118654752440)).erf() * 0.5 + 0.5
            let pdf = (x * x * -0.5).exp() * x.scalarLike(0.39894228040143267794)
            return g * (cdf + x * pdf)
        }
    }

    /// GELU by `approximate`: `.none` is the exact form, `.tanh` the tanh approximation
    /// `x/2 · (1 + tanh(√(2/π)·(x + 0.044715 x³)))` of GPT-2 (PyTorch's `approximate="tanh"`).
    public func gelu(approximate: GELUApproximation) -> Tensor {
        guard approximate == .tanh else { return gelu() }
        return unaryOp(.geluTanh, "GeluBackward") { x, _, g in
            if x.takesFusedGradient(g) {
                return Kernels.geluBackward(g, x, approximate: .tanh)
            }
            let c = x.scalarLike(0.79788456080286535588)
            let t = (c * (x + x * x * x * 0.044715)).tanh()
            return g * ((t + 1) * 0.5 + x * 0.5 * (1 - t * t) * c * (x * x * 0.134145 + 1))
        }
    }

    /// `x * sigmoid(x)`, also called swish.
    public func silu() -> Tensor {
        unaryOp(.silu, "SiluBackward") { x, _, g in
            if x.takesFusedGradient(g) {
                return Kernels.siluBackward(g, x)
            }
            let s = x.sigmoid()
            return g * s * (1 + x * (1 - s))
        }
    }

    /// `log(1 + exp(beta x)) / beta`, linear where `beta x > threshold` for stability.
    public func softplus(beta: Double = 1, threshold: Double = 20) -> Tensor {
        unaryOp(.softplus(beta: beta, threshold: threshold), "SoftplusBackward") { x, _, g in
            let bx = x * x.scalarLike(beta)
            let linear = bx.gt(threshold)
            return g * (linear + (1 - linear) * bx.sigmoid())
        }
    }

    /// The Gauss error function (used by `gelu`'s derivative).
    public func erf() -> Tensor {
        unaryOp(.erf, "ErfBackward") { x, _, g in
            g * (x * x * -1).exp() * x.scalarLike(1.12837916709551257390)
        }
    }
}

/// How `gelu` is computed: exactly (`"none"`, PyTorch's default) or with the tanh approximation
/// (`"tanh"`); a string literal works as in PyTorch: `GELU(approximate: "tanh")`.
public enum GELUApproximation: String, Sendable, StringOption {
    case none, tanh
}

extension Tensor {
    /// Whether an activation's gradient `g` for this input can come from a fused float32 kernel:
    /// not while recording backward itself (`createGraph` needs the gradient as ops).
    func takesFusedGradient(_ g: Tensor) -> Bool {
        !GradMode.isEnabled && dtype == .float32 && g.dtype == .float32 && g.shape == shape
    }
}
