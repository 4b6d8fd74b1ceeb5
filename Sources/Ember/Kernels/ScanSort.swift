extension Kernels {
    /// Running sums along the middle axis of `[outer, size, inner]` (`torch.cumsum`).
    static func cumsum(_ x: Tensor, outer: Int, size: Int, inner: Int) -> Tensor {
        if x.dtype == .bfloat16 { stop(x.dtype.refusal("cumsum")) }
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        func run<T: AdditiveArithmetic>(_ s: UnsafePointer<T>, _ d: UnsafeMutablePointer<T>) {
            for o in 0..<outer {
                let src = s + o * size * inner, dst = d + o * size * inner
                // Row by row: each row adds the previous running row, which vectorises.
                for i in 0..<inner { dst[i] = src[i] }
                for k in 1..<Swift.max(size, 1) {
                    let prev = dst + (k - 1) * inner, row = src + k * inner, cur = dst + k * inner
                    for i in 0..<inner { cur[i] = prev[i] + row[i] }
                }
            }
        }
        switch x.dtype {
        case .float32: run(x.pointer(Float.self), out.pointer(Float.self))
        case .float64: run(x.pointer(Double.self), out.pointer(Double.self))
        default: run(x.pointer(Int64.self), out.pointer(Int64.self))
        }
        return out
    }

    /// For each slice along the middle axis of `[outer, size, inner]`, the indices (int64) that
    /// sort it, stably; NaN sorts as the largest value, as in PyTorch.
    static func sortIndices(_ x: Tensor, outer: Int, size: Int, inner: Int, descending: Bool) -> Tensor {
        if x.dtype == .bfloat16 { stop(x.dtype.refusal("sorting")) }
        let out = Tensor(uninitializedShape: x.shape, dtype: .int64)
        let idx = out.pointer(Int64.self)
        func run<T: Comparable>(_ p: UnsafePointer<T>, isNaN: (T) -> Bool) {
            var order = [Int](repeating: 0, count: size)
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = p + o * size * inner + i
                    for k in 0..<size { order[k] = k }
                    // A stable sort: ties keep their original order.
                    order.sort { a, b in
                        let va = base[a * inner], vb = base[b * inner]
                        let na = isNaN(va), nb = isNaN(vb)
                        if na || nb { return na != nb && (descending ? na : nb) || (na == nb && a < b) }
                        if va == vb { return a < b }
                        return descending ? va > vb : va < vb
                    }
                    for k in 0..<size { idx[(o * size + k) * inner + i] = Int64(order[k]) }
                }
            }
        }
        switch x.dtype {
        case .float32: run(x.pointer(Float.self)) { $0.isNaN }
        case .float64: run(x.pointer(Double.self)) { $0.isNaN }
        default: run(x.pointer(Int64.self)) { _ in false }
        }
        return out
    }
}
