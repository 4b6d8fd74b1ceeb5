/// Vector norms and products of vectors: norm, outer; and the logical reductions any / all.
extension Tensor {
    /// The `p`-norm over `dims` (every element when nil), `torch.linalg.vector_norm`'s
    /// definition: `p = 2` (the default, also PyTorch's "fro" for vectors), `1`, `.infinity`,
    /// `-.infinity`, `0` (the count of non-zeros) or any other positive power.
    public func norm(_ p: Double = 2, dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        require(dtype.isFloatingPoint, "norm needs a floating-point tensor, got \(dtype)")
        let dims = dims ?? Array(0..<rank)
        let a = abs()
        switch p {
        case 2: return euclideanNorm(dims: dims, keepDim: keepDim)
        case 1: return a.sum(dims: dims, keepDim: keepDim)
        case 0: return ne(0).sum(dims: dims, keepDim: keepDim)
        case .infinity, -.infinity:
            // One dimension at a time, so the gradient goes to the extreme element(s).
            var y = a
            for d in dims.map({ normalizeDim($0) }).sorted(by: >) {
                y = p > 0 ? y.max(dim: d, keepDim: true).values : y.min(dim: d, keepDim: true).values
            }
            return keepDim ? y : y.reshape(shape.enumerated().filter { !dims.map { normalizeDim($0) }.contains($0.offset) }.map(\.element))
        default:
            require(p > 0, "norm: p must be positive, 0 or ±infinity, got \(p)")
            return a.pow(p).sum(dims: dims, keepDim: keepDim).pow(1 / p)
        }
    }

    /// The 2-norm with PyTorch's gradient: `x / ‖x‖`, and 0 where the norm is 0 (a padded row)
    /// rather than the 0·∞ = NaN of differentiating `sqrt(sum(x²))` there.
    private func euclideanNorm(dims: [Int], keepDim: Bool) -> Tensor {
        let kept = noGrad { (self * self).sum(dims: dims, keepDim: true).sqrt() }
        let reduced = Set(dims.map { normalizeDim($0) })
        let out = keepDim ? kept : kept.reshape(shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element))
        return out.recordOp("LinalgVectorNormBackward", [self]) { [shape = kept.shape] g in
            // Recomputed under the engine's grad mode, so double backward sees its dependence on x.
            let n = (self * self).sum(dims: dims, keepDim: true).sqrt()
            return [g.reshape(shape) * self / n.maskedFill(n.eq(0), 1)]
        }
    }

    /// The `p`-norm along one dimension.
    public func norm(_ p: Double = 2, dim: Int, keepDim: Bool = false) -> Tensor {
        norm(p, dims: [dim], keepDim: keepDim)
    }

    /// The outer product of two vectors: `out[i][j] = self[i] * other[j]` (`torch.outer`).
    public func outer(_ other: Tensor) -> Tensor {
        require(rank == 1 && other.rank == 1, "outer needs two vectors, got shapes \(shape) and \(other.shape)")
        return unsqueeze(1) * other.unsqueeze(0)
    }

    /// 1 where any element (along `dims`, or all) is non-zero, else 0, as a mask of this dtype
    /// (float32 for int64 tensors), like `torch.any`.
    public func any(dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        noGrad { ne(0).sum(dims: dims ?? Array(0..<rank), keepDim: keepDim).gt(0) }
    }

    /// 1 where every element (along `dims`, or all) is non-zero, else 0 (`torch.all`).
    public func all(dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        noGrad { eq(0).sum(dims: dims ?? Array(0..<rank), keepDim: keepDim).eq(0) }
    }

    public func any(dim: Int, keepDim: Bool = false) -> Tensor { any(dims: [dim], keepDim: keepDim) }
    public func all(dim: Int, keepDim: Bool = false) -> Tensor { all(dims: [dim], keepDim: keepDim) }
}
