extension Kernels {
    /// Sums a tensor viewed as `[outer, size, inner]` over the middle axis → `[outer, inner]`.
    static func sumAxis(_ x: Tensor, outer: Int, size: Int, inner: Int) -> Tensor {
        let out = Tensor(uninitializedShape: [outer * inner], dtype: x.dtype)
        switch x.dtype {
        case .float32: sumAxis(x.pointer(Float.self), out.pointer(Float.self), outer, size, inner)
        case .float64: sumAxis(x.pointer(Double.self), out.pointer(Double.self), outer, size, inner)
        case .int64: sumAxis(x.pointer(Int64.self), out.pointer(Int64.self), outer, size, inner)
        case .bfloat16: stop(DType.bfloat16Refused("a reduction"))
        }
        return out
    }

    private static func sumAxis<T: AdditiveArithmetic>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>,
                                                       _ outer: Int, _ size: Int, _ inner: Int) {
        for o in 0..<outer {
            let src = x + o * size * inner, dst = y + o * inner
            if inner == 1 {
                dst[0] = sumContiguous(src, size)
            } else {
                // Add whole rows, which vectorises, instead of striding down columns.
                dst.update(repeating: .zero, count: inner)
                for k in 0..<size {
                    let row = src + k * inner
                    for i in 0..<inner { dst[i] += row[i] }
                }
            }
        }
    }

    /// Sum with four independent accumulators: faster, and more accurate than one running sum.
    @inline(__always)
    static func sumContiguous<T: AdditiveArithmetic>(_ p: UnsafePointer<T>, _ n: Int) -> T {
        var s0 = T.zero, s1 = T.zero, s2 = T.zero, s3 = T.zero
        var i = 0
        while i + 4 <= n {
            s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]
            i += 4
        }
        while i < n { s0 += p[i]; i += 1 }
        return (s0 + s1) + (s2 + s3)
    }

    /// Index of the largest (or smallest) value along the middle axis of `[outer, size, inner]`;
    /// the first one wins ties, and NaN counts as largest, as in PyTorch.
    static func argExtreme(_ x: Tensor, outer: Int, size: Int, inner: Int, largest: Bool) -> Tensor {
        if x.dtype == .bfloat16 { stop(x.dtype.refusal("argmax/argmin")) }
        let out = Tensor(uninitializedShape: [outer * inner], dtype: .int64)
        func run<T: Comparable>(_ p: UnsafePointer<T>, isNaN: (T) -> Bool) {
            let idx = out.pointer(Int64.self)
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = p + o * size * inner + i
                    var best = 0
                    var bestValue = base[0]
                    if isNaN(bestValue) { idx[o * inner + i] = 0; continue }
                    for k in 1..<max(size, 1) {
                        let v = base[k * inner]
                        if isNaN(v) { best = k; break }
                        if largest ? v > bestValue : v < bestValue { best = k; bestValue = v }
                    }
                    idx[o * inner + i] = Int64(best)
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

    /// Softmax (or log-softmax) along the middle axis of `[outer, size, inner]`, max-shifted so
    /// exp never overflows.
    static func softmax(_ x: Tensor, outer: Int, size: Int, inner: Int, log: Bool) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        func run<T: FloatElement>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
            for o in 0..<outer {
                for i in 0..<inner {
                    let s = src + o * size * inner + i, d = dst + o * size * inner + i
                    var m = -T.infinity
                    for k in 0..<size { m = Swift.max(m, s[k * inner]) }
                    if m == -T.infinity { m = 0 }
                    var total: T = 0
                    for k in 0..<size {
                        let e = T.exp(s[k * inner] - m)
                        total += e
                        if !log { d[k * inner] = e }
                    }
                    if log {
                        let shift = m + T.log(total)
                        for k in 0..<size { d[k * inner] = s[k * inner] - shift }
                    } else {
                        let r = 1 / total
                        for k in 0..<size { d[k * inner] *= r }
                    }
                }
            }
        }
        switch x.dtype {
        case .float32: run(x.pointer(Float.self), out.pointer(Float.self))
        case .float64: run(x.pointer(Double.self), out.pointer(Double.self))
        case .int64, .bfloat16: stop(x.dtype.refusal("softmax"))
        }
        return out
    }
}
