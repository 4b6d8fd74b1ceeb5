import CEmberSupport

/// Cross-entropy of logits `[N, C]` against class indices as one fused op: per row, the loss is
/// `logsumexp(x) − x[target]` (max-shifted), and the gradient `softmax(x) − onehot(target)`,
/// each computed in a single pass without materialising log-probabilities.
extension Kernels {
    /// Per-row losses (0 for ignored rows) and the softmax rows kept for backward.
    static func crossEntropyRows(_ x: Tensor, targets: [Int], ignoreIndex: Int) -> (losses: [Double], softmax: Tensor) {
        let n = x.shape[0], c = x.shape[1]
        let soft = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        var losses = [Double](repeating: 0, count: n)
        func run<T: FloatElement>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            for r in 0..<n {
                let row = src + r * c, out = dst + r * c
                var m = -T.infinity
                for j in 0..<c { m = Swift.max(m, row[j]) }
                var total: T = 0
                for j in 0..<c { let e = T.exp(row[j] - m); out[j] = e; total += e }
                let inv = 1 / total
                for j in 0..<c { out[j] *= inv }
                let t = targets[r]
                losses[r] = t == ignoreIndex ? 0 : Double(m + T.log(total) - row[t])
            }
        }
        guard x.dtype == .float32 else {
            run(x.pointer(Double.self), soft.pointer(Double.self))
            return (losses, soft)
        }
        var lse = [Float](repeating: 0, count: n)
        ember_softmax_rows_f32(x.pointer(Float.self), soft.pointer(Float.self), &lse, n, c)
        let logits = x.pointer(Float.self)
        for r in 0..<n where targets[r] != ignoreIndex { losses[r] = Double(lse[r] - logits[r * c + targets[r]]) }
        return (losses, soft)
    }

    /// `(softmax − onehot(target)) · scale[row]`, rows of ignored targets zero.
    static func crossEntropyGradient(_ softmax: Tensor, targets: [Int], ignoreIndex: Int, rowScale: [Double]) -> Tensor {
        let n = softmax.shape[0], c = softmax.shape[1]
        let grad = Tensor(uninitializedShape: softmax.shape, dtype: softmax.dtype)
        func run<T: FloatElement>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            for r in 0..<n {
                let t = targets[r], out = dst + r * c
                guard t != ignoreIndex else { out.update(repeating: 0, count: c); continue }
                let s = T(rowScale[r]), row = src + r * c
                for j in 0..<c { out[j] = row[j] * s }
                out[t] -= s
            }
        }
        softmax.dtype == .float64 ? run(softmax.pointer(Double.self), grad.pointer(Double.self))
            : run(softmax.pointer(Float.self), grad.pointer(Float.self))
        return grad
    }
}

extension Losses {
    /// The fused path of `crossEntropy` for `[N, C]` logits without class weights or label
    /// smoothing (the common case). Under `createGraph` its backward falls back to the composite
    /// formula, so second derivatives still work.
    static func fusedCrossEntropy(_ input: Tensor, _ labels: [Int], ignoreIndex: Int, reduction: Reduction) -> Tensor {
        let n = input.shape[0]
        let (rows, softmax) = Kernels.crossEntropyRows(input, targets: labels, ignoreIndex: ignoreIndex)
        let counted = labels.filter { $0 != ignoreIndex }.count
        let out: Tensor
        switch reduction {
        case .none: out = Tensor(rows, shape: [n], dtype: input.dtype)
        case .sum, .batchMean: out = Tensor(scalar: rows.reduce(0, +), dtype: input.dtype)
        case .mean: out = Tensor(scalar: rows.reduce(0, +) / Double(counted), dtype: input.dtype)
        }
        return out.recordOp("CrossEntropyBackward", [input]) { [x = input] g in
            if GradMode.isEnabled {
                let target = Tensor(indices: labels)
                let composite = classification(logProbabilities: x.logSoftmax(dim: 1), target: target, weight: nil,
                                               ignoreIndex: ignoreIndex, reduction: reduction, labelSmoothing: 0, name: "CrossEntropyLoss")
                return [(try? grad(of: [composite], wrt: [x], gradOutputs: [g], createGraph: true))?[0] ?? nil]
            }
            let perRow: [Double]
            switch reduction {
            case .none: perRow = g.doubleScalars
            case .sum, .batchMean: perRow = [Double](repeating: g.doubleItem(), count: n)
            case .mean: perRow = [Double](repeating: g.doubleItem() / Double(counted), count: n)
            }
            return [Kernels.crossEntropyGradient(softmax, targets: labels, ignoreIndex: ignoreIndex, rowScale: perRow)]
        }
    }
}

/// Binary cross-entropy with logits as one fused op (no per-element weight; an optional
/// positive-class weight per class, i.e. along the last dimension):
/// loss = (1 − t)·x + lw·(log(1 + e^−|x|) + max(−x, 0)) with lw = 1 + (pw − 1)·t, and
/// d/dx = (1 − t) + lw·(σ(x) − 1), each in one overflow-free pass.
extension Kernels {
    static func bceWithLogits(_ x: Tensor, _ t: Tensor, posWeight: [Double]?) -> (loss: Tensor, dLoss: Tensor) {
        let loss = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let grad = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let classes = x.shape.last ?? 1
        func run<T: FloatElement>(_ xp: UnsafePointer<T>, _ tp: UnsafePointer<T>, _ lp: UnsafeMutablePointer<T>, _ gp: UnsafeMutablePointer<T>) {
            for i in 0..<x.count {
                let v = xp[i], target = tp[i]
                let lw = posWeight.map { 1 + (T($0[i % classes]) - 1) * target } ?? 1
                let softplusNeg = T.log1p(T.exp(-Swift.abs(v))) + Swift.max(-v, 0)
                lp[i] = (1 - target) * v + lw * softplusNeg
                gp[i] = (1 - target) + lw * (sigmoid(v) - 1)
            }
        }
        if x.dtype == .float64 {
            run(x.pointer(Double.self), t.pointer(Double.self), loss.pointer(Double.self), grad.pointer(Double.self))
        } else {
            run(x.pointer(Float.self), t.pointer(Float.self), loss.pointer(Float.self), grad.pointer(Float.self))
        }
        return (loss, grad)
    }
}

extension Losses {
    /// The fused path of `binaryCrossEntropyWithLogits`; under `createGraph` its backward uses
    /// the composite formula so second derivatives still work.
    static func fusedBCEWithLogits(_ input: Tensor, _ target: Tensor, posWeight: Tensor?, reduction: Reduction) -> Tensor {
        let t = noGrad { target.to(input.dtype) }
        let (elementwise, derivative) = Kernels.bceWithLogits(input, t, posWeight: posWeight?.doubleScalars)
        let out = noGrad { reduction.apply(elementwise) }
        return out.recordOp("BinaryCrossEntropyWithLogitsBackward", [input]) { [x = input] g in
            if GradMode.isEnabled {
                let composite = compositeBCEWithLogits(x, t, weight: nil, posWeight: posWeight, reduction: reduction)
                return [(try? grad(of: [composite], wrt: [x], gradOutputs: [g], createGraph: true))?[0] ?? nil]
            }
            let scale: Tensor
            switch reduction {
            case .none: scale = g
            case .sum, .batchMean: scale = g
            case .mean: scale = g / Float(x.count)
            }
            return [derivative * scale]
        }
    }
}
