import Foundation

/// Data movement: permutes, broadcasts, slices, joins and indexed reads and writes.
/// Pure moves work on raw bytes, so one instantiation per element size serves every dtype.
extension Kernels {
    /// A new contiguous tensor of `shape` whose element at each index is read from `x` at
    /// `strides` (given in the output's index space; 0 repeats along a dimension).
    static func stridedCopy(_ x: Tensor, strides: [Int], shape: [Int]) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: x.dtype)
        let loop = StridedLoop(shape: shape, aStrides: strides, bStrides: [Int](repeating: 0, count: shape.count))
        func run<T>(_ s: UnsafePointer<T>, _ d: UnsafeMutablePointer<T>) {
            let n = loop.inner, step = loop.aInner
            loop.forEachRow { ao, _, oo in
                if step == 1 {
                    (d + oo).update(from: s + ao, count: n)
                } else if step == 0 {
                    (d + oo).update(repeating: s[ao], count: n)
                } else {
                    for i in 0..<n { d[oo + i] = s[ao + i * step] }
                }
            }
        }
        switch x.dtype.byteSize {
        case 2: run(x.pointer(UInt16.self), out.pointer(UInt16.self))
        case 4: run(x.pointer(UInt32.self), out.pointer(UInt32.self))
        default: run(x.pointer(UInt64.self), out.pointer(UInt64.self))
        }
        return out
    }

    /// Copies the blocks `[outer, size, inner]` → `[outer, length, inner]` starting at `start`
    /// (narrow), or the reverse into a zeroed tensor when `scatter` (narrow's backward).
    static func copyBlock(from src: Tensor, into dst: Tensor, outer: Int, srcSize: Int, dstSize: Int,
                          srcStart: Int, dstStart: Int, length: Int, inner: Int) {
        let e = src.dtype.byteSize
        let s = src.dataPointer, d = dst.dataPointer
        let bytes = length * inner * e
        for o in 0..<outer {
            let so = ((o * srcSize) + srcStart) * inner * e
            let dOff = ((o * dstSize) + dstStart) * inner * e
            (d + dOff).copyMemory(from: s + so, byteCount: bytes)
        }
    }

    /// `src [outer, length, inner]` placed at `start` of the middle axis of a new `[outer, size,
    /// inner]`, zeros elsewhere: only the margins are zeroed, not the whole (an LSTM's output
    /// gradient was written twice in each backward).
    static func placed(_ src: Tensor, outer: Int, length: Int, inner: Int, start: Int, size: Int, shape: [Int]) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: src.dtype)
        let e = src.dtype.byteSize, row = size * inner * e, body = length * inner * e
        let before = start * inner * e, after = row - before - body
        for o in 0..<outer {
            let d = out.dataPointer + o * row
            d.initializeMemory(as: UInt8.self, repeating: 0, count: before)
            (d + before).copyMemory(from: src.dataPointer + o * body, byteCount: body)
            (d + before + body).initializeMemory(as: UInt8.self, repeating: 0, count: after)
        }
        return out
    }

    /// Zero-filled tensor (every dtype's zero is all-zero bytes).
    static func zeroed(_ shape: [Int], dtype: DType) -> Tensor {
        let t = Tensor(uninitializedShape: shape, dtype: dtype)
        t.dataPointer.initializeMemory(as: UInt8.self, repeating: 0, count: t.count * dtype.byteSize)
        return t
    }

    static func checkIndex(_ i: Int64, _ size: Int, _ what: String) -> Int {
        require(i >= 0 && i < size, "\(what): index \(i) is out of bounds for dimension of size \(size)")
        return Int(i)
    }

    /// Rows `index[j]` of the middle axis of `[outer, size, inner]` → `[outer, index.count, inner]`.
    static func indexSelect(_ x: Tensor, outer: Int, size: Int, inner: Int, index: Tensor, shape: [Int]) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: x.dtype)
        let idx = index.pointer(Int64.self), n = index.count, e = x.dtype.byteSize
        for o in 0..<outer {
            for j in 0..<n {
                let k = checkIndex(idx[j], size, "indexSelect")
                (out.dataPointer + ((o * n + j) * inner) * e)
                    .copyMemory(from: x.dataPointer + ((o * size + k) * inner) * e, byteCount: inner * e)
            }
        }
        return out
    }

    /// The adjoint of `indexSelect`: rows of `src` added into a zero tensor of `shape` at `index`.
    static func indexAdd(_ src: Tensor, outer: Int, size: Int, inner: Int, index: Tensor, shape: [Int]) -> Tensor {
        let out = zeroed(shape, dtype: src.dtype)
        let idx = index.pointer(Int64.self), n = index.count
        func run<T: FloatElement>(_ s: UnsafePointer<T>, _ d: UnsafeMutablePointer<T>) {
            for o in 0..<outer {
                for j in 0..<n {
                    let k = checkIndex(idx[j], size, "indexAdd")
                    axpy(1, s + (o * n + j) * inner, d + (o * size + k) * inner, inner)
                }
            }
        }
        switch src.dtype {
        case .float32: run(src.pointer(Float.self), out.pointer(Float.self))
        case .float64: run(src.pointer(Double.self), out.pointer(Double.self))
        case .int64, .bfloat16: stop(src.dtype.refusal("indexAdd"))
        }
        return out
    }

    /// `out[o, j, i] = x[o, index[o, j, i], i]` for `x` viewed as `[outer, size, inner]`.
    static func gather(_ x: Tensor, outer: Int, size: Int, inner: Int, index: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: index.shape, dtype: x.dtype)
        let idx = index.pointer(Int64.self), n = index.count / max(outer * inner, 1)
        func run<T>(_ s: UnsafePointer<T>, _ d: UnsafeMutablePointer<T>) {
            if inner == 1 {
                // Along the last dimension (max pooling, picking class scores): one flat loop.
                for o in 0..<outer {
                    let row = s + o * size, out = d + o * n, ix = idx + o * n
                    for j in 0..<n { out[j] = row[checkIndex(ix[j], size, "gather")] }
                }
                return
            }
            for o in 0..<outer {
                for j in 0..<n {
                    let base = (o * n + j) * inner
                    for i in 0..<inner {
                        let k = checkIndex(idx[base + i], size, "gather")
                        d[base + i] = s[(o * size + k) * inner + i]
                    }
                }
            }
        }
        switch x.dtype.byteSize {
        case 2: run(x.pointer(UInt16.self), out.pointer(UInt16.self))
        case 4: run(x.pointer(UInt32.self), out.pointer(UInt32.self))
        default: run(x.pointer(UInt64.self), out.pointer(UInt64.self))
        }
        return out
    }

    /// The adjoint of `gather`: `out[o, index[o, j, i], i] += src[o, j, i]` into zeros of `shape`.
    static func scatterAdd(_ src: Tensor, outer: Int, size: Int, inner: Int, index: Tensor, shape: [Int]) -> Tensor {
        if src.dtype == .bfloat16 { stop(src.dtype.refusal("scatterAdd")) }
        let out = zeroed(shape, dtype: src.dtype)
        let idx = index.pointer(Int64.self), n = index.count / max(outer * inner, 1)
        func run<T: AdditiveArithmetic>(_ s: UnsafePointer<T>, _ d: UnsafeMutablePointer<T>) {
            if inner == 1 {
                for o in 0..<outer {
                    let row = d + o * size, from = s + o * n, ix = idx + o * n
                    for j in 0..<n { row[checkIndex(ix[j], size, "scatterAdd")] += from[j] }
                }
                return
            }
            for o in 0..<outer {
                for j in 0..<n {
                    let base = (o * n + j) * inner
                    for i in 0..<inner {
                        let k = checkIndex(idx[base + i], size, "scatterAdd")
                        d[(o * size + k) * inner + i] += s[base + i]
                    }
                }
            }
        }
        switch src.dtype {
        case .float32: run(src.pointer(Float.self), out.pointer(Float.self))
        case .float64: run(src.pointer(Double.self), out.pointer(Double.self))
        default: run(src.pointer(Int64.self), out.pointer(Int64.self))
        }
        return out
    }

    /// `cond != 0 ? a : b` over tensors already expanded to one shape, `a` and `b` of one dtype.
    static func select(_ cond: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: a.shape, dtype: a.dtype)
        let mask = noGrad { cond.to(.float64) }
        let c = mask.pointer(Double.self)
        func run<T>(_ x: UnsafePointer<T>, _ y: UnsafePointer<T>, _ d: UnsafeMutablePointer<T>) {
            for i in 0..<a.count { d[i] = c[i] != 0 ? x[i] : y[i] }
        }
        defer { withExtendedLifetime(mask) {} }
        switch a.dtype.byteSize {
        case 2: run(a.pointer(UInt16.self), b.pointer(UInt16.self), out.pointer(UInt16.self))
        case 4: run(a.pointer(UInt32.self), b.pointer(UInt32.self), out.pointer(UInt32.self))
        default: run(a.pointer(UInt64.self), b.pointer(UInt64.self), out.pointer(UInt64.self))
        }
        return out
    }
}
