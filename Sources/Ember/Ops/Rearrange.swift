/// Ops that copy elements into a new arrangement: flip, repeat, repeatInterleave, unbind, and
/// the triangular parts tril / triu. Each is differentiable.
extension Tensor {
    /// PyTorch's name for `concat`: joins tensors along an existing dimension.
    public static func cat(_ tensors: [Tensor], dim: Int = 0) -> Tensor { concat(tensors, dim: dim) }

    /// The elements in reverse order along each of `dims` (`torch.flip`).
    public func flip(_ dims: [Int]) -> Tensor {
        let dims = Array(Set(dims.map { normalizeDim($0) })).sorted()
        let out = noGrad { () -> Tensor in
            var y = self
            for d in dims where shape[d] > 1 {
                y = y.indexSelect(dim: d, index: Tensor(indices: Array((0..<shape[d]).reversed())))
            }
            return y === self ? clone() : y
        }
        return out.recordOp("FlipBackward", [self]) { g in [g.flip(dims)] }
    }

    /// Tiles the tensor `sizes[i]` times along dimension `i` (`torch.Tensor.repeat`); `sizes` may
    /// have more entries than the rank, which adds leading dimensions.
    public func `repeat`(_ sizes: [Int]) -> Tensor {
        require(sizes.count >= rank, "repeat: \(sizes.count) repeat counts for a tensor of rank \(rank) (shape \(shape)); give at least one per dimension")
        require(sizes.allSatisfy { $0 >= 0 }, "repeat: counts must be non-negative, got \(sizes)")
        let padded = [Int](repeating: 1, count: sizes.count - rank) + shape
        // [s0, s1] → [1, s0, 1, s1] → expand to [r0, s0, r1, s1] → [r0*s0, r1*s1].
        let spread = reshape(padded.flatMap { [1, $0] })
        let tiled = spread.expand(zip(sizes, padded).flatMap { [$0, $1] })
        return tiled.reshape(zip(sizes, padded).map { $0 * $1 })
    }

    /// Repeats each element (each slice along `dim`) `repeats` times in place
    /// (`torch.repeat_interleave`); without `dim`, of the flattened tensor.
    public func repeatInterleave(_ repeats: Int, dim: Int? = nil) -> Tensor {
        require(repeats >= 0, "repeatInterleave: repeats must be non-negative, got \(repeats)")
        guard let dim else { return flatten().repeatInterleave(repeats, dim: 0) }
        let d = normalizeDim(dim)
        var target = shape
        target.insert(repeats, at: d + 1)
        var merged = shape
        merged[d] *= repeats
        return unsqueeze(d + 1).expand(target).reshape(merged)
    }

    /// Repeats slice `i` along `dim` `repeats[i]` times (`torch.repeat_interleave` with a tensor
    /// of counts).
    public func repeatInterleave(_ repeats: [Int], dim: Int? = nil) -> Tensor {
        guard let dim else { return flatten().repeatInterleave(repeats, dim: 0) }
        let d = normalizeDim(dim)
        require(repeats.count == shape[d] && repeats.allSatisfy { $0 >= 0 },
                "repeatInterleave: needs \(shape[d]) non-negative counts for dimension \(dim) of shape \(shape), got \(repeats)")
        let index = repeats.enumerated().flatMap { [Int](repeating: $0.offset, count: $0.element) }
        return indexSelect(dim: d, index: Tensor(indices: index))
    }

    /// The slices along `dim`, with that dimension removed (`torch.unbind`).
    public func unbind(dim: Int = 0) -> [Tensor] {
        let d = normalizeDim(dim)
        return (0..<shape[d]).map { narrow(dim: d, start: $0, length: 1).squeeze(d) }
    }

    /// The lower triangle of the last two dimensions: elements with `column - row <= diagonal`
    /// are kept, the rest are zero (`torch.tril`).
    public func tril(diagonal: Int = 0) -> Tensor { triangle(diagonal: diagonal, lower: true) }

    /// The upper triangle: elements with `column - row >= diagonal` kept (`torch.triu`).
    public func triu(diagonal: Int = 0) -> Tensor { triangle(diagonal: diagonal, lower: false) }

    private func triangle(diagonal: Int, lower: Bool) -> Tensor {
        require(rank >= 2, "\(lower ? "tril" : "triu") needs a tensor of at least 2 dimensions, got shape \(shape)")
        let rows = shape[rank - 2], cols = shape[rank - 1]
        var keep = [Double](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols where lower ? c - r <= diagonal : c - r >= diagonal { keep[r * cols + c] = 1 }
        }
        // `where`, not a product with the mask, so that inf and NaN outside the triangle vanish.
        return Tensor.where(Tensor(keep, shape: [rows, cols], dtype: .float64), self, scalarLike(0))
    }
}
