/// Batch normalisation as one fused op: statistics, normalisation and affine transform in a
/// single pass per channel forward, and the closed-form gradient in a single pass backward.
extension Kernels {
    /// Per-channel mean, biased variance and 1/sqrt(variance + eps) of `x` viewed as
    /// `[outer, C, inner]` (two passes over each channel for an accurate variance).
    static func channelStatistics(_ x: Tensor, channels c: Int, eps: Double) -> (mean: Tensor, variance: [Double], invstd: Tensor) {
        let outer = x.shape[0], inner = x.count / max(outer * c, 1), m = Double(outer * inner)
        var means = [Double](repeating: 0, count: c), variances = means, invstds = means
        func run<T: FloatElement>(_ p: UnsafePointer<T>) {
            for ch in 0..<c {
                var sum = 0.0
                for o in 0..<outer { sum += Double(sumContiguous(p + (o * c + ch) * inner, inner)) }
                let mean = sum / m
                var squares = 0.0
                for o in 0..<outer {
                    let row = p + (o * c + ch) * inner
                    var s: T = 0
                    let mu = T(mean)
                    for i in 0..<inner { let d = row[i] - mu; s += d * d }
                    squares += Double(s)
                }
                means[ch] = mean
                variances[ch] = squares / m
                invstds[ch] = 1 / (squares / m + eps).squareRoot()
            }
        }
        x.dtype == .float64 ? run(x.pointer(Double.self)) : run(x.pointer(Float.self))
        return (Tensor(means, shape: [c], dtype: x.dtype), variances, Tensor(invstds, shape: [c], dtype: x.dtype))
    }

    /// `y = x·scale[c] + shift[c]` over `[outer, C, inner]`.
    static func channelAffine(_ x: Tensor, scale: [Double], shift: [Double]) -> Tensor {
        let c = scale.count, outer = x.shape[0], inner = x.count / max(outer * c, 1)
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        func run<T: FloatElement>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            for o in 0..<outer {
                for ch in 0..<c {
                    let a = T(scale[ch]), b = T(shift[ch]), base = (o * c + ch) * inner
                    for i in 0..<inner { dst[base + i] = src[base + i] * a + b }
                }
            }
        }
        x.dtype == .float64 ? run(x.pointer(Double.self), out.pointer(Double.self))
            : run(x.pointer(Float.self), out.pointer(Float.self))
        return out
    }

    /// The batch-norm gradient in closed form, per channel with `x̂ = (x − mean)·invstd`:
    /// `dβ = Σg`, `dγ = Σg·x̂`, `dx = γ·invstd·(g − dβ/M − x̂·dγ/M)`.
    static func batchNormBackward(_ g: Tensor, _ x: Tensor, mean: Tensor, invstd: Tensor, weight: Tensor?)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let c = mean.count, outer = x.shape[0], inner = x.count / max(outer * c, 1), m = Double(outer * inner)
        let dx = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        var dWeight = [Double](repeating: 0, count: c), dBias = [Double](repeating: 0, count: c)
        let mu = mean.doubleScalars, inv = invstd.doubleScalars, gamma = weight?.doubleScalars
        func run<T: FloatElement>(_ gp: UnsafePointer<T>, _ xp: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>) {
            for ch in 0..<c {
                let mean = T(mu[ch]), invstd = T(inv[ch])
                var sumG = 0.0, sumGX = 0.0
                for o in 0..<outer {
                    let base = (o * c + ch) * inner
                    var sg: T = 0, sgx: T = 0
                    for i in 0..<inner {
                        sg += gp[base + i]
                        sgx += gp[base + i] * (xp[base + i] - mean) * invstd
                    }
                    sumG += Double(sg)
                    sumGX += Double(sgx)
                }
                dBias[ch] = sumG
                dWeight[ch] = sumGX
                let k = T((gamma?[ch] ?? 1) * inv[ch]), meanG = T(sumG / m), meanGX = T(sumGX / m)
                for o in 0..<outer {
                    let base = (o * c + ch) * inner
                    for i in 0..<inner {
                        let xhat = (xp[base + i] - mean) * invstd
                        out[base + i] = k * (gp[base + i] - meanG - xhat * meanGX)
                    }
                }
            }
        }
        if x.dtype == .float64 {
            run(g.pointer(Double.self), x.pointer(Double.self), dx.pointer(Double.self))
        } else {
            run(g.pointer(Float.self), x.pointer(Float.self), dx.pointer(Float.self))
        }
        return (dx, Tensor(dWeight, shape: [c], dtype: x.dtype), Tensor(dBias, shape: [c], dtype: x.dtype))
    }
}

extension Tensor {
    /// Batch normalisation over every dimension but 1 (channels), like `F.batch_norm`.
    ///
    /// In training (or without running statistics) it normalises with the batch's statistics
    /// (biased variance) and, when given running statistics, updates them with `momentum`
    /// (unbiased variance, as PyTorch); otherwise it uses the running statistics.
    public func batchNorm(runningMean: Tensor?, runningVar: Tensor?, weight: Tensor?, bias: Tensor?,
                          training: Bool, momentum: Double = 0.1, eps: Double = 1e-5) -> Tensor {
        require(rank >= 2, "batchNorm expects [N, C, ...], got \(shape)")
        let c = shape[1]
        let affineShape = [1, c] + [Int](repeating: 1, count: rank - 2)
        let useBatch = training || runningMean == nil || runningVar == nil
        guard useBatch else {
            // Evaluation: a per-channel affine map, composed so it stays differentiable.
            let invstd = (runningVar!.to(dtype) + scalarLike(eps)).rsqrt()
            let scale = weight.map { $0 * invstd } ?? invstd
            let shift = (bias ?? Tensor.zeros([c], dtype: dtype)) - runningMean!.to(dtype) * scale
            return self * scale.reshape(affineShape) + shift.reshape(affineShape)
        }
        let n = count / c
        require(n > 1, "batchNorm needs more than one value per channel in training, got input \(shape)")
        let (mean, variance, invstd) = Kernels.channelStatistics(self, channels: c, eps: eps)
        if let runningMean, let runningVar {
            noGrad {
                let unbiased = Tensor(variance.map { $0 * Double(n) / Double(n - 1) }, shape: [c], dtype: runningVar.dtype)
                runningMean.copy_(runningMean * Float(1 - momentum) + mean.to(runningMean.dtype) * Float(momentum))
                runningVar.copy_(runningVar * Float(1 - momentum) + unbiased * Float(momentum))
            }
        }
        let gamma = weight?.doubleScalars ?? [Double](repeating: 1, count: c)
        let beta = bias?.doubleScalars ?? [Double](repeating: 0, count: c)
        let mu = mean.doubleScalars, inv = invstd.doubleScalars
        let scale = (0..<c).map { gamma[$0] * inv[$0] }
        let shift = (0..<c).map { beta[$0] - mu[$0] * scale[$0] }
        let out = Kernels.channelAffine(self, scale: scale, shift: shift)
        let inputs = [self] + (weight.map { [$0] } ?? []) + (bias.map { [$0] } ?? [])
        return out.recordOp("NativeBatchNormBackward", inputs) { [x = self] g in
            if GradMode.isEnabled {
                // createGraph: the same gradient from differentiable ops, so it can be
                // differentiated again.
                let dims = [0] + Array(2..<x.rank)
                let centered = x - x.mean(dims: dims, keepDim: true)
                let inv = (centered * centered).mean(dims: dims, keepDim: true).add(x.scalarLike(eps)).rsqrt()
                let xhat = centered * inv
                let gamma = weight?.reshape(affineShape) ?? x.scalarLike(1)
                let dx = gamma * inv * (g - g.mean(dims: dims, keepDim: true) - xhat * (g * xhat).mean(dims: dims, keepDim: true))
                return [dx] + (weight.map { _ in [(g * xhat).sum(dims: dims)] } ?? []) + (bias.map { _ in [g.sum(dims: dims)] } ?? [])
            }
            let r = Kernels.batchNormBackward(g, x, mean: mean, invstd: invstd, weight: weight)
            return [r.dx] + (weight.map { _ in [r.dWeight] } ?? []) + (bias.map { _ in [r.dBias] } ?? [])
        }
    }
}
