/// Layer and RMS normalisation over the trailing dimensions. Layer norm is one fused op:
/// statistics, normalisation and affine transform in one pass per row, its gradient in one.
extension Tensor {
    /// `torch.nn.functional.layer_norm`: normalises over the trailing `normalizedShape`
    /// dimensions with the biased variance, then scales by `weight` and shifts by `bias`
    /// (each of `normalizedShape`, optional).
    public func layerNorm(_ normalizedShape: [Int], weight: Tensor? = nil, bias: Tensor? = nil, eps: Double = 1e-5) -> Tensor {
        require(Array(shape.suffix(normalizedShape.count)) == normalizedShape && normalizedShape.count <= rank,
                "layerNorm over \(normalizedShape) got input of shape \(shape); its trailing dimensions must be \(normalizedShape)")
        for (what, t) in [("weight", weight), ("bias", bias)] {
            if let t { require(t.shape == normalizedShape, "layerNorm: \(what) has shape \(t.shape), expected \(normalizedShape)") }
        }
        require(dtype.isFloatingPoint, "layerNorm needs a floating-point tensor, got \(dtype)")
        let width = normalizedShape.reduce(1, *), rows = count / Swift.max(width, 1)
        let w = weight?.to(dtype), b = bias?.to(dtype)
        let (y, mean, rstd) = Kernels.layerNorm(self, weight: w, bias: b, rows: rows, width: width, eps: eps)
        let inputs = [self] + [w, b].compactMap { $0 }
        return y.recordOp("LayerNormBackward", inputs) { [x = self] g in
            var grads: [Tensor?]
            if GradMode.isEnabled {
                // Under createGraph: the same gradient from recorded ops, differentiable again.
                let dims = Array((x.rank - normalizedShape.count)..<x.rank)
                let rstd = (x.variance(dims: dims, correction: 0, keepDim: true) + eps).rsqrt()
                let xhat = (x - x.mean(dims: dims, keepDim: true)) * rstd
                let gh = w.map { g * $0 } ?? g
                let lead = Array(0..<(x.rank - normalizedShape.count))
                grads = [rstd * (gh - gh.mean(dims: dims, keepDim: true) - xhat * (gh * xhat).mean(dims: dims, keepDim: true))]
                if w != nil { grads.append((g * xhat).sum(dims: lead)) }
                if b != nil { grads.append(g.sum(dims: lead)) }
                return grads
            }
            let (dx, dw, db) = Kernels.layerNormBackward(g, x, mean: mean, rstd: rstd, weight: w, rows: rows, width: width)
            grads = [dx]
            if w != nil { grads.append(dw.reshape(normalizedShape)) }
            if b != nil { grads.append(db.reshape(normalizedShape)) }
            return grads
        }
    }

    /// `torch.nn.functional.rms_norm`: `x / sqrt(mean(x²) + eps) * weight` over the trailing
    /// `normalizedShape` dimensions; `eps` nil is the dtype's machine epsilon, as in PyTorch.
    public func rmsNorm(_ normalizedShape: [Int], weight: Tensor? = nil, eps: Double? = nil) -> Tensor {
        require(Array(shape.suffix(normalizedShape.count)) == normalizedShape && normalizedShape.count <= rank,
                "rmsNorm over \(normalizedShape) got input of shape \(shape); its trailing dimensions must be \(normalizedShape)")
        let eps = eps ?? (dtype == .float64 ? Double.ulpOfOne : Double(Float.ulpOfOne))
        let dims = Array((rank - normalizedShape.count)..<rank)
        let y = self * ((self * self).mean(dims: dims, keepDim: true) + eps).rsqrt()
        return weight.map { y * $0 } ?? y
    }
}
