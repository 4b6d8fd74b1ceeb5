/// Slicing and joining along a dimension: narrow, concat, stack, split, chunk, subscripts.
extension Tensor {
    /// Elements `start..<start+length` along `dim` (a copy).
    public func narrow(dim: Int, start: Int, length: Int) -> Tensor {
        let d = normalizeDim(dim)
        let start = start < 0 ? start + shape[d] : start
        require(start >= 0 && length >= 0 && start + length <= shape[d],
                     "narrow: range \(start)..<\(start + length) is out of bounds for dimension \(dim) of size \(shape[d]) (shape \(shape))")
        if start == 0 && length == shape[d] { return self }
        var outShape = shape
        outShape[d] = length
        let (outer, size, inner) = Shapes.split(shape, at: d)
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        Kernels.copyBlock(from: self, into: out, outer: outer, srcSize: size, dstSize: length,
                          srcStart: start, dstStart: 0, length: length, inner: inner)
        return out.recordOp("NarrowBackward", [self]) { [full = shape] g in
            [g.unnarrow(dim: d, start: start, size: full[d])]
        }
    }

    /// The adjoint of `narrow`: `self` placed at `start` along `dim` in zeros of length `size`.
    func unnarrow(dim d: Int, start: Int, size: Int) -> Tensor {
        var outShape = shape
        outShape[d] = size
        let (outer, length, inner) = Shapes.split(shape, at: d)
        let out = Kernels.placed(self, outer: outer, length: length, inner: inner, start: start, size: size, shape: outShape)
        return out.recordOp("UnnarrowBackward", [self]) { g in [g.narrow(dim: d, start: start, length: length)] }
    }

    /// Joins tensors along an existing dimension; all other dimensions must match.
    public static func concat(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
        require(!tensors.isEmpty, "concat needs at least one tensor")
        let dtype = tensors.map(\.dtype).reduce(tensors[0].dtype, promoted)
        let parts = tensors.map { $0.to(dtype) }
        let first = parts[0]
        let d = first.normalizeDim(dim)
        for t in parts {
            require(t.rank == first.rank && t.shape.enumerated().allSatisfy { $0.offset == d || $0.element == first.shape[$0.offset] },
                         "concat along dimension \(dim): shapes \(first.shape) and \(t.shape) differ outside that dimension")
        }
        let sizes = parts.map { $0.shape[d] }
        var outShape = first.shape
        outShape[d] = sizes.reduce(0, +)
        let (outer, total, inner) = Shapes.split(outShape, at: d)
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        var offset = 0
        for (t, n) in zip(parts, sizes) {
            Kernels.copyBlock(from: t, into: out, outer: outer, srcSize: n, dstSize: total,
                              srcStart: 0, dstStart: offset, length: n, inner: inner)
            offset += n
        }
        return out.recordOp("CatBackward", parts) { g in
            var start = 0
            return sizes.map { n in
                defer { start += n }
                return g.narrow(dim: d, start: start, length: n)
            }
        }
    }

    /// Joins tensors of one shape along a new dimension.
    public static func stack(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
        require(!tensors.isEmpty, "stack needs at least one tensor")
        for t in tensors {
            require(t.shape == tensors[0].shape, "stack needs equal shapes, got \(tensors[0].shape) and \(t.shape)")
        }
        return concat(tensors.map { $0.unsqueeze(dim) }, dim: dim)
    }

    /// Pieces of `splitSize` along `dim` (the last may be smaller).
    public func split(_ splitSize: Int, dim: Int = 0) -> [Tensor] {
        require(splitSize > 0, "split size must be positive, got \(splitSize)")
        let n = shape[normalizeDim(dim)]
        return stride(from: 0, to: n, by: splitSize).map {
            narrow(dim: dim, start: $0, length: Swift.min(splitSize, n - $0))
        }
    }

    /// Pieces of the given sizes along `dim`; they must add up to the dimension's size.
    public func split(sizes: [Int], dim: Int = 0) -> [Tensor] {
        let n = shape[normalizeDim(dim)]
        require(sizes.reduce(0, +) == n, "split sizes \(sizes) do not add up to \(n) (dimension \(dim) of \(shape))")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return narrow(dim: dim, start: start, length: size)
        }
    }

    /// `chunks` pieces of nearly equal size along `dim`, as `torch.chunk`.
    public func chunk(_ chunks: Int, dim: Int = 0) -> [Tensor] {
        require(chunks > 0, "chunk count must be positive, got \(chunks)")
        let n = shape[normalizeDim(dim)]
        return split(Swift.max(1, (n + chunks - 1) / chunks), dim: dim)
    }

    /// Index `i` of the first dimension, with that dimension removed: `x[0]`.
    public subscript(_ i: Int) -> Tensor {
        require(rank > 0, "cannot index a zero-dimensional tensor")
        let i = i < 0 ? i + shape[0] : i
        return narrow(dim: 0, start: i, length: 1).squeeze(0)
    }

    /// A range of the first dimension: `x[2..<5]`.
    public subscript(_ r: Range<Int>) -> Tensor {
        narrow(dim: 0, start: r.lowerBound, length: r.count)
    }
}
