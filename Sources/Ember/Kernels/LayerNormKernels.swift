import CEmberSupport

extension Kernels {
    /// Layer normalisation of `rows` rows of `width` elements: `y = (x - mean) * rstd * w + b`
    /// per row, with the row's mean and `rstd = 1/sqrt(var + eps)` (biased variance) saved for
    /// the backward pass. Two passes over each row (mean, then centred squares) keep the
    /// variance accurate. Float32 runs in C (Normalization.c), vectorised.
    static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, rows: Int, width: Int, eps: Double)
        -> (y: Tensor, mean: Tensor, rstd: Tensor) {
        let y = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let mean = Tensor(uninitializedShape: [rows], dtype: x.dtype), rstd = Tensor(uninitializedShape: [rows], dtype: x.dtype)
        func run<T: FloatElement>(_ xp: UnsafePointer<T>, _ yp: UnsafeMutablePointer<T>, _ mp: UnsafeMutablePointer<T>,
                                  _ rp: UnsafeMutablePointer<T>, _ w: UnsafePointer<T>?, _ b: UnsafePointer<T>?) {
            let n = T(width)
            for r in 0..<rows {
                let row = xp + r * width, out = yp + r * width
                let mu = sumContiguous(row, width) / n
                var squares: T = 0
                for i in 0..<width { let d = row[i] - mu; squares += d * d }
                let inv = 1 / (squares / n + T(eps)).squareRoot()
                mp[r] = mu
                rp[r] = inv
                switch (w, b) {
                case let (w?, b?): for i in 0..<width { out[i] = (row[i] - mu) * inv * w[i] + b[i] }
                case let (w?, nil): for i in 0..<width { out[i] = (row[i] - mu) * inv * w[i] }
                case let (nil, b?): for i in 0..<width { out[i] = (row[i] - mu) * inv + b[i] }
                case (nil, nil): for i in 0..<width { out[i] = (row[i] - mu) * inv }
                }
            }
        }
        switch x.dtype {
        case .float32:
            let (xp, yp, mp, rp) = (x.pointer(Float.self), y.pointer(Float.self), mean.pointer(Float.self), rstd.pointer(Float.self))
            let (wp, bp) = (weight?.pointer(Float.self), bias?.pointer(Float.self))
            // Each row is normalised alone: rows shared by the product threads.
            share(rows, grain: Swift.max(1, (1 << 15) / Swift.max(width, 1))) { r0, r1 in
                ember_layer_norm_f32(xp + r0 * width, wp, bp, yp + r0 * width, mp + r0, rp + r0, r1 - r0, width, Float(eps))
            }
        case .float64:
            run(x.pointer(Double.self), y.pointer(Double.self), mean.pointer(Double.self), rstd.pointer(Double.self),
                weight.map { UnsafePointer($0.pointer(Double.self)) }, bias.map { UnsafePointer($0.pointer(Double.self)) })
        case .int64, .bfloat16: stop(x.dtype.refusal("layer norm"))
        }
        return (y, mean, rstd)
    }

    /// The layer-norm gradient in one pass per row, with `x̂ = (x - mean)·rstd` and `ĝ = g·w`:
    /// `dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))`, `dw = Σ_rows g·x̂`, `db = Σ_rows g`.
    static func layerNormBackward(_ g: Tensor, _ x: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor?,
                                  rows: Int, width: Int) -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let dx = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let dw = zeroed([width], dtype: x.dtype), db = zeroed([width], dtype: x.dtype)
        func run<T: FloatElement>(_ gp: UnsafePointer<T>, _ xp: UnsafePointer<T>, _ mp: UnsafePointer<T>, _ rp: UnsafePointer<T>,
                                  _ w: UnsafePointer<T>?, _ dxp: UnsafeMutablePointer<T>, _ dwp: UnsafeMutablePointer<T>,
                                  _ dbp: UnsafeMutablePointer<T>) {
            let n = T(width)
            for r in 0..<rows {
                let gr = gp + r * width, xr = xp + r * width, out = dxp + r * width
                let mu = mp[r], inv = rp[r]
                var sumG: T = 0, sumGX: T = 0
                for i in 0..<width {
                    let xhat = (xr[i] - mu) * inv
                    let gh = gr[i] * (w?[i] ?? 1)
                    sumG += gh
                    sumGX += gh * xhat
                    dwp[i] += gr[i] * xhat
                    dbp[i] += gr[i]
                }
                let meanG = sumG / n, meanGX = sumGX / n
                for i in 0..<width {
                    let xhat = (xr[i] - mu) * inv
                    out[i] = inv * (gr[i] * (w?[i] ?? 1) - meanG - xhat * meanGX)
                }
            }
        }
        switch x.dtype {
        case .float32:
            ember_layer_norm_backward_f32(g.pointer(Float.self), x.pointer(Float.self), mean.pointer(Float.self), rstd.pointer(Float.self),
                                          weight?.pointer(Float.self), dx.pointer(Float.self), dw.pointer(Float.self), db.pointer(Float.self), rows, width)
        case .float64:
            run(g.pointer(Double.self), x.pointer(Double.self), mean.pointer(Double.self), rstd.pointer(Double.self),
                weight.map { UnsafePointer($0.pointer(Double.self)) }, dx.pointer(Double.self), dw.pointer(Double.self), db.pointer(Double.self))
        case .int64, .bfloat16: stop(x.dtype.refusal("layer norm"))
        }
        return (dx, dw, db)
    }
}
