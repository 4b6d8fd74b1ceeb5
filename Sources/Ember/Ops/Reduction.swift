/// Reductions over all elements or chosen dimensions.
extension Tensor {
    private func normalizedDims(_ dims: [Int]) -> [Int] {
        Array(Set(dims.map { normalizeDim($0) })).sorted()
    }

    private func reducedShape(_ dims: [Int], keepDim: Bool) -> [Int] {
        keepDim ? shape.enumerated().map { dims.contains($0.offset) ? 1 : $0.element }
                : shape.enumerated().filter { !dims.contains($0.offset) }.map(\.element)
    }

    /// Sum of all elements, as a zero-dimensional tensor.
    public func sum() -> Tensor { sum(dims: Array(0..<rank), keepDim: false) }

    public func sum(dim: Int, keepDim: Bool = false) -> Tensor { sum(dims: [dim], keepDim: keepDim) }

    /// Sum over `dims`; kept as size 1 when `keepDim`.
    public func sum(dims: [Int], keepDim: Bool = false) -> Tensor {
        let dims = normalizedDims(dims)
        var out = self
        var current = shape
        // One axis at a time, last first, so each pass is a simple [outer, size, inner] reduction.
        if dims.count == rank && rank > 1 {
            out = Kernels.sumAxis(self, outer: 1, size: count, inner: 1)
        } else {
            for d in dims.reversed() {
                let (outer, size, inner) = Shapes.split(current, at: d)
                out = Kernels.sumAxis(out, outer: outer, size: size, inner: inner)
                current[d] = 1
            }
        }
        let result = Tensor(storage: out.storage, shape: reducedShape(dims, keepDim: keepDim), dtype: dtype, byteOffset: out.byteOffset)
        return result.recordOp("SumBackward", [self]) { [kept = reducedShape(dims, keepDim: true), full = shape] g in
            [g.reshape(kept).expand(full)]
        }
    }

    /// Mean of all elements.
    public func mean() -> Tensor { mean(dims: Array(0..<rank), keepDim: false) }

    public func mean(dim: Int, keepDim: Bool = false) -> Tensor { mean(dims: [dim], keepDim: keepDim) }

    public func mean(dims: [Int], keepDim: Bool = false) -> Tensor {
        require(dtype.isFloatingPoint, "mean needs a floating-point tensor, got \(dtype)")
        let n = normalizedDims(dims).map { shape[$0] }.reduce(1, *)
        return sum(dims: dims, keepDim: keepDim) / scalarLike(Double(n))
    }

    /// Variance with Bessel's correction by default (`correction: 1`), as `torch.var`.
    public func variance(dims: [Int]? = nil, correction: Int = 1, keepDim: Bool = false) -> Tensor {
        let dims = dims ?? Array(0..<rank)
        let n = normalizedDims(dims).map { shape[$0] }.reduce(1, *)
        let centered = self - mean(dims: dims, keepDim: true)
        return (centered * centered).sum(dims: dims, keepDim: keepDim) / scalarLike(Double(Swift.max(n - correction, 0)))
    }

    /// `torch.var(dim=...)`.
    public func `var`(dim: Int? = nil, correction: Int = 1, keepDim: Bool = false) -> Tensor {
        variance(dims: dim.map { [$0] }, correction: correction, keepDim: keepDim)
    }

    /// Standard deviation (square root of `var`).
    public func std(dim: Int? = nil, correction: Int = 1, keepDim: Bool = false) -> Tensor {
        `var`(dim: dim, correction: correction, keepDim: keepDim).sqrt()
    }

    /// Largest values along `dim` and their indices; the gradient goes to those indices.
    public func max(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
        extremum(dim: dim, keepDim: keepDim, largest: true)
    }

    /// Smallest values along `dim` and their indices.
    public func min(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
        extremum(dim: dim, keepDim: keepDim, largest: false)
    }

    /// Largest element.
    public func max() -> Tensor { flatten().max(dim: 0).values }
    /// Smallest element.
    public func min() -> Tensor { flatten().min(dim: 0).values }

    private func extremum(dim: Int, keepDim: Bool, largest: Bool) -> (values: Tensor, indices: Tensor) {
        let d = normalizeDim(dim)
        let index = argExtreme(dim: d, largest: largest)
        let values = gather(dim: d, index: index)
        return keepDim ? (values, index) : (values.squeeze(d), index.squeeze(d))
    }

    /// Indices (int64) of the largest values along `dim`, kept as size 1.
    private func argExtreme(dim d: Int, largest: Bool) -> Tensor {
        require(shape[d] > 0, "max/min over an empty dimension \(d) of shape \(shape)")
        let (outer, size, inner) = Shapes.split(shape, at: d)
        let idx = Kernels.argExtreme(self, outer: outer, size: size, inner: inner, largest: largest)
        var kept = shape
        kept[d] = 1
        return Tensor(storage: idx.storage, shape: kept, dtype: .int64, byteOffset: idx.byteOffset)
    }

    /// Index of the largest value along `dim`, or of all elements flattened when `dim` is nil.
    public func argmax(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
        guard let dim else { return flatten().argmax(dim: 0) }
        let idx = argExtreme(dim: normalizeDim(dim), largest: true)
        return keepDim ? idx : idx.squeeze(dim)
    }

    /// Index of the smallest value along `dim`, or of all elements flattened when `dim` is nil.
    public func argmin(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
        guard let dim else { return flatten().argmin(dim: 0) }
        let idx = argExtreme(dim: normalizeDim(dim), largest: false)
        return keepDim ? idx : idx.squeeze(dim)
    }

    /// `log(sum(exp(x)))` along `dim`, computed stably by shifting by the maximum.
    public func logsumexp(dim: Int, keepDim: Bool = false) -> Tensor {
        let d = normalizeDim(dim)
        let m = noGrad { max(dim: d, keepDim: true).values }
        // An all -inf slice keeps a shift of 0 so the result is -inf, not NaN.
        let shift = Tensor.where(m.abs().eq(.infinity), m.scalarLike(0), m)
        let out = (self - shift).exp().sum(dim: d, keepDim: true).log() + shift
        return keepDim ? out : out.squeeze(d)
    }
}
