/// Ops that change how elements are arranged: reshape (a view), permute and expand (copies).
extension Tensor {
    /// Converts to `dtype`; differentiable between floating-point types.
    public func to(_ dtype: DType) -> Tensor {
        if dtype == self.dtype { return self }
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        Kernels.convert(self, into: out)
        guard dtype.isFloatingPoint else { return out }
        return out.recordOp("ToCopyBackward", [self]) { [from = self.dtype] g in [g.to(from)] }
    }

    /// The same elements in a new shape (one dimension may be -1); shares storage.
    public func reshape(_ newShape: [Int]) -> Tensor {
        let target = check { try Shapes.infer(newShape, count: count, from: shape) }
        if target == shape { return self }
        let out = Tensor(storage: storage, shape: target, dtype: dtype, byteOffset: byteOffset)
        return out.recordOp("ViewBackward", [self]) { [old = shape] g in [g.reshape(old)] }
    }

    /// PyTorch's name for `reshape` on contiguous tensors.
    public func view(_ newShape: [Int]) -> Tensor { reshape(newShape) }

    /// Merges dimensions `startDim...endDim` into one.
    public func flatten(startDim: Int = 0, endDim: Int = -1) -> Tensor {
        guard rank > 0 else { return reshape([1]) }
        let s = normalizeDim(startDim), e = normalizeDim(endDim)
        require(s <= e, "flatten: startDim \(startDim) comes after endDim \(endDim)")
        return reshape(Array(shape[..<s]) + [shape[s...e].reduce(1, *)] + Array(shape[(e + 1)...]))
    }

    /// Removes dimension `dim` if it has size 1, or every size-1 dimension when `dim` is nil.
    public func squeeze(_ dim: Int? = nil) -> Tensor {
        guard let dim else { return reshape(shape.filter { $0 != 1 }) }
        let d = normalizeDim(dim)
        guard shape[d] == 1 else { return self }
        var s = shape
        s.remove(at: d)
        return reshape(s)
    }

    /// Inserts a size-1 dimension at `dim` (which may be `rank`, or negative).
    public func unsqueeze(_ dim: Int) -> Tensor {
        let d = normalizeDim(dim, rank: rank + 1)
        var s = shape
        s.insert(1, at: d)
        return reshape(s)
    }

    /// Reorders dimensions: `out.shape[i] == shape[dims[i]]`.
    public func permute(_ dims: [Int]) -> Tensor {
        let dims = dims.map { normalizeDim($0) }
        require(dims.count == rank && Set(dims).count == rank,
                     "permute needs a permutation of 0..<\(rank), got \(dims)")
        if dims == Array(0..<rank) { return self }
        let inStrides = Shapes.strides(shape)
        let out = Kernels.stridedCopy(self, strides: dims.map { inStrides[$0] }, shape: dims.map { shape[$0] })
        var inverse = [Int](repeating: 0, count: rank)
        for (i, d) in dims.enumerated() { inverse[d] = i }
        return out.recordOp("PermuteBackward", [self]) { g in [g.permute(inverse)] }
    }

    /// Swaps two dimensions.
    public func transpose(_ dim0: Int, _ dim1: Int) -> Tensor {
        var dims = Array(0..<rank)
        dims.swapAt(normalizeDim(dim0), normalizeDim(dim1))
        return permute(dims)
    }

    /// The transpose of a matrix (a vector is returned as is).
    public func t() -> Tensor {
        require(rank <= 2, "t() expects a tensor of at most 2 dimensions, got shape \(shape)")
        return rank < 2 ? self : transpose(0, 1)
    }

    /// Repeats size-1 dimensions (and adds leading ones) to reach `newShape`; -1 keeps a size.
    public func expand(_ newShape: [Int]) -> Tensor {
        let lead = newShape.count - rank
        require(lead >= 0, "expand: shape \(newShape) has fewer dimensions than \(shape)")
        let target = newShape.enumerated().map { i, n in n == -1 ? shape[i - lead] : n }
        if target == shape { return self }
        let broadcast = check { try Shapes.broadcast(shape, target) }
        require(broadcast == target, "the shape \(shape) cannot be expanded to \(newShape)")
        let out = Kernels.stridedCopy(self, strides: StridedLoop.broadcastStrides(shape, to: target), shape: target)
        return out.recordOp("ExpandBackward", [self]) { [old = shape] g in [g.sumTo(old)] }
    }

    /// Expands to another tensor's shape.
    public func expand(as other: Tensor) -> Tensor { expand(other.shape) }
}
