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
    /// Clamps to `[min, max]`. The gradient flows where `min < x < max` only: at a bound it is
    /// 0, as in PyTorch 2.15.
    public func clamp(min: Double = -.infinity, max: Double = .infinity) -> Tensor {
        unaryOp(.clamp(min: min, max: max), "ClampBackward") { x, _, g in
            g * (x.gt(min) * x.lt(max))
        }
    }

    /// Clamps to tensor bounds (broadcasting): `minimum(maximum(x, min), max)`, so `max` wins
    /// where `min > max`. The gradient goes to whichever is the result; where `x` equals one
    /// bound it is split evenly between them, and where it equals both it goes to `x`
    /// (PyTorch 2.15's rule).
    public func clamp(min lo: Tensor?, max hi: Tensor?) -> Tensor {
        require(lo != nil || hi != nil, "clamp needs at least one of min and max")
        let x = self
        let out = noGrad { () -> Tensor in
            var y = x
            if let lo { y = y.maximum(lo) }
            if let hi { y = y.minimum(hi) }
            return y
        }
        let inputs = [x] + (lo.map { [$0] } ?? []) + (hi.map { [$0] } ?? [])
        return out.recordOp("ClampBackward", inputs) { g in
            let shape = out.shape
            let a = lo?.expand(shape) ?? x.scalarLike(-.infinity).expand(shape)
            let b = hi?.expand(shape) ?? x.scalarLike(.infinity).expand(shape)
            let xs = x.expand(shape)
            let valid = 1 - a.gt(b)                        // min ≤ max: the bounds are ordered
            let atLo = xs.eq(a), atHi = xs.eq(b)
            let loOnly = atLo * (1 - atHi), hiOnly = atHi * (1 - atLo)
            let gx = valid * (xs.gt(a) * xs.lt(b) + atLo * atHi + loOnly * 0.5 + hiOnly * 0.5)
            var grads: [Tensor?] = [(g * gx).sumTo(x.shape)]
            if let lo { grads.append((g * (valid * (xs.lt(a) + loOnly * 0.5))).sumTo(lo.shape)) }
            if let hi { grads.append((g * ((1 - valid) + valid * (xs.gt(b) + hiOnly * 0.5))).sumTo(hi.shape)) }
            return grads
        }
    }
}
