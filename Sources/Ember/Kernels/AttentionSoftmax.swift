import CEmberSupport

extension Kernels {
    /// `softmax(scale * scores + mask)` over the last axis of `scores` viewed as `[batch, rows,
    /// cols]`, in one pass per row. `mask` (optional, additive) is `[rows, cols]` shared by every
    /// batch or `[batch, rows, cols]`; `causal` keeps column `j` of row `i` only when `j <= i`,
    /// without a mask tensor: the other columns are neither read nor exponentiated. A row with
    /// nothing left to attend to is all zeros (PyTorch's "safe softmax" for attention).
    static func attentionSoftmax(_ scores: Tensor, scale: Double, mask: Tensor?, causal: Bool,
                                 batch: Int, rows: Int, cols: Int) -> Tensor {
        let out = Tensor(uninitializedShape: scores.shape, dtype: scores.dtype)
        let maskStride = mask.map { $0.count == rows * cols ? 0 : rows * cols } ?? 0
        func run<T: FloatElement>(_ type: T.Type) {
            attentionSoftmax(scores.pointer(T.self), mask: mask.map { UnsafePointer($0.pointer(T.self)) }, maskStride: maskStride,
                             into: out.pointer(T.self), batch: batch, rows: rows, cols: cols, scale: scale, causal: causal)
        }
        switch scores.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        case .int64, .bfloat16: stop(scores.dtype.refusal("attention"))
        }
        return out
    }

    /// The same on raw buffers (a head's block of a larger one, say). Float32 runs in C
    /// (Activations.c), vectorised; these loops are float64's.
    static func attentionSoftmax<T: FloatElement>(_ s: UnsafePointer<T>, mask m: UnsafePointer<T>?, maskStride: Int,
                                                  into d: UnsafeMutablePointer<T>, batch: Int, rows: Int, cols: Int,
                                                  scale: Double, causal: Bool) {
        if T.self == Float.self {
            // Blocks of `rows` rows, shared by the product threads (each row is its own softmax).
            let block = rows * cols
            return share(batch, grain: Swift.max(1, softmaxGrain / Swift.max(block, 1))) { b0, b1 in
                ember_attention_softmax_f32(floats(s + b0 * block), m.map { floats($0 + b0 * maskStride) }, maskStride, floats(d + b0 * block),
                                            b1 - b0, rows, cols, Float(scale), causal ? 1 : 0)
            }
        }
        let scale = T(scale)
        for b in 0..<batch {
            for r in 0..<rows {
                let src = s + (b * rows + r) * cols, dst = d + (b * rows + r) * cols
                let add = m.map { $0 + b * maskStride + r * cols }
                let width = causal ? Swift.min(r + 1, cols) : cols
                var top = -T.infinity
                for c in 0..<width {
                    let z = src[c] * scale + (add?[c] ?? 0)
                    dst[c] = z
                    if z > top { top = z }
                }
                if top == -T.infinity || top.isNaN {
                    // Nothing to attend to (or NaN scores, which stay NaN).
                    let fill: T = top.isNaN ? .nan : 0
                    for c in 0..<cols { dst[c] = fill }
                    continue
                }
                var total: T = 0
                for c in 0..<width {
                    let e = T.exp(dst[c] - top)
                    dst[c] = e
                    total += e
                }
                let inv = 1 / total
                for c in 0..<width { dst[c] *= inv }
                for c in width..<cols { dst[c] = 0 }
            }
        }
    }

    /// The gradient of `attentionSoftmax` with respect to its logits `scale * scores + mask`:
    /// `scale * p * (g - sum(g * p))` per row, in one pass (the scale is the scores').
    static func attentionSoftmaxBackward(_ g: Tensor, _ p: Tensor, cols: Int, scale: Double) -> Tensor {
        let out = Tensor(uninitializedShape: p.shape, dtype: p.dtype)
        let n = p.count / Swift.max(cols, 1)
        func run<T: FloatElement>(_ type: T.Type) {
            attentionSoftmaxBackward(g.pointer(T.self), p.pointer(T.self), into: out.pointer(T.self), rows: n, cols: cols, scale: scale)
        }
        switch p.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        case .int64, .bfloat16: stop(p.dtype.refusal("attention"))
        }
        return out
    }

    /// Scores worth a product thread of their own: smaller softmaxes stay on the caller.
    private static let softmaxGrain = 1 << 14

    /// The same on raw buffers of `rows` rows. With `causalRows` (the rows of each causal block,
    /// whose row `i` attends to columns up to `i`), a row reads only the columns it attends to and
    /// the others get zeros: `g` may hold anything there.
    static func attentionSoftmaxBackward<T: FloatElement>(_ gp: UnsafePointer<T>, _ pp: UnsafePointer<T>, into d: UnsafeMutablePointer<T>,
                                                          rows n: Int, cols: Int, scale: Double, causalRows: Int = 0) {
        if T.self == Float.self {
            return share(n, grain: Swift.max(1, softmaxGrain / Swift.max(cols, 1))) { r0, r1 in
                ember_attention_softmax_backward_f32(floats(gp + r0 * cols), floats(pp + r0 * cols), floats(d + r0 * cols), r1 - r0, cols,
                                                     Float(scale), r0, causalRows)
            }
        }
        let scale = T(scale)
        for r in 0..<n {
            let gr = gp + r * cols, pr = pp + r * cols, dr = d + r * cols
            let width = causalRows > 0 ? Swift.min(r % causalRows + 1, cols) : cols
            var dot: T = 0
            for c in 0..<width { dot += gr[c] * pr[c] }
            for c in 0..<width { dr[c] = scale * pr[c] * (gr[c] - dot) }
            for c in width..<cols { dr[c] = 0 }
        }
    }
}
