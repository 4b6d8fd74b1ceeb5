extension Tensor {
    /// Runs a unary kernel and records `derivative(x, y, g)` as its backward.
    ///
    /// `y()` is the op's output. During an ordinary backward it is the saved forward result; under
    /// `createGraph` it is recomputed from `x` with recording on, so the derivative stays connected
    /// to `x` and can be differentiated again. Saving only a detached copy also keeps the graph
    /// free of reference cycles (output → node → output).
    func unaryOp(_ op: UnaryOp, _ name: String,
                 derivative: @escaping (_ x: Tensor, _ y: () -> Tensor, _ g: Tensor) -> Tensor) -> Tensor {
        let out = Kernels.unary(op, self)
        guard GradMode.isEnabled && requiresGrad else { return out }
        let saved = out.detach()
        return out.recordOp(name, [self]) { [x = self] g in
            let y = { GradMode.isEnabled ? x.unaryOp(op, name, derivative: derivative) : saved }
            return [derivative(x, y, g)]
        }
    }
}

/// Elementwise math functions.
extension Tensor {
    public func exp() -> Tensor { unaryOp(.exp, "ExpBackward") { _, y, g in g * y() } }
    public func log() -> Tensor { unaryOp(.log, "LogBackward") { x, _, g in g / x } }
    public func sqrt() -> Tensor { unaryOp(.sqrt, "SqrtBackward") { _, y, g in g / (y() * 2) } }
    public func rsqrt() -> Tensor {
        unaryOp(.rsqrt, "RsqrtBackward") { _, y, g in
            let r = y()
            return g * r * r * r * -0.5
        }
    }
    public func abs() -> Tensor { unaryOp(.abs, "AbsBackward") { x, _, g in g * x.sign() } }
    /// -1, 0 or 1 by the sign of each element; its gradient is zero.
    public func sign() -> Tensor { unaryOp(.sign, "SignBackward") { _, _, g in g * 0 } }
    public func reciprocal() -> Tensor {
        unaryOp(.reciprocal, "ReciprocalBackward") { _, y, g in
            let r = y()
            return -g * r * r
        }
    }
    public func sin() -> Tensor { unaryOp(.sin, "SinBackward") { x, _, g in g * x.cos() } }
    public func cos() -> Tensor { unaryOp(.cos, "CosBackward") { x, _, g in -g * x.sin() } }
    public func square() -> Tensor { pow(2.0) }

    /// Limits every element to `[min, max]`; the gradient passes where `min <= x <= max`.
    public func clamp(min: Double = -.infinity, max: Double = .infinity) -> Tensor {
        unaryOp(.clamp(min: min, max: max), "ClampBackward") { x, _, g in
            g * (x.ge(min) * x.le(max))
        }
    }
}
