/// Softmax and log-softmax: fused, max-shifted kernels with hand-written backward.
extension Tensor {
    private func softmaxOp(dim: Int, log: Bool) -> Tensor {
        let d = normalizeDim(dim)
        let (outer, size, inner) = Shapes.split(shape, at: d)
        let out = Kernels.softmax(self, outer: outer, size: size, inner: inner, log: log)
        guard GradMode.isEnabled && requiresGrad else { return out }
        let saved = out.detach()
        return out.recordOp(log ? "LogSoftmaxBackward" : "SoftmaxBackward", [self]) { [x = self] g in
            // Recompute with recording under createGraph, so the result stays differentiable.
            let y = GradMode.isEnabled ? x.softmaxOp(dim: d, log: log) : saved
            if log {
                return [g - y.exp() * g.sum(dim: d, keepDim: true)]
            }
            return [y * (g - (g * y).sum(dim: d, keepDim: true))]
        }
    }

    /// `exp(x) / sum(exp(x))` along `dim`.
    public func softmax(dim: Int) -> Tensor { softmaxOp(dim: dim, log: false) }

    /// `x - logsumexp(x)` along `dim`, computed without forming the softmax.
    public func logSoftmax(dim: Int) -> Tensor { softmaxOp(dim: dim, log: true) }
}
