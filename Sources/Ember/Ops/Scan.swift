/// Running and whole products and sums along a dimension: cumsum, prod.
extension Tensor {
    /// Running sums along `dim` (`torch.cumsum`).
    public func cumsum(dim: Int) -> Tensor {
        let d = normalizeDim(dim)
        let (outer, size, inner) = Shapes.split(shape, at: d)
        let out = Kernels.cumsum(self, outer: outer, size: size, inner: inner)
        // Each input feeds every later output: the gradient is the reversed running sum.
        return out.recordOp("CumsumBackward", [self]) { g in [g.flip([d]).cumsum(dim: d).flip([d])] }
    }

    /// Product of all elements.
    public func prod() -> Tensor { flatten().prod(dim: 0) }

    /// Product along `dim` (`torch.prod`). The gradient of each element is the product of the
    /// others, exact where elements are zero (no division).
    public func prod(dim: Int, keepDim: Bool = false) -> Tensor {
        let d = normalizeDim(dim)
        let n = shape[d]
        let out = noGrad { () -> Tensor in
            var acc = narrow(dim: d, start: 0, length: Swift.min(1, n))
            if n == 0 { return Tensor.ones(Array(shape[..<d]) + [1] + Array(shape[(d + 1)...]), dtype: dtype) }
            for k in 1..<n { acc = acc * narrow(dim: d, start: k, length: 1) }
            return acc
        }
        let result = keepDim ? out : out.squeeze(d)
        return result.recordOp("ProdBackward", [self]) { [x = self, kept = out.shape] g in
            [g.reshape(kept) * x.productOfOthers(dim: d)]
        }
    }

    /// For every element, the product of the other elements of its slice along `d`: the slice
    /// repeated n times with the diagonal set to 1, multiplied out (differentiable again).
    private func productOfOthers(dim d: Int) -> Tensor {
        let n = shape[d]
        guard n > 1 else { return Tensor.onesLike(self) }
        var grid = shape
        grid.insert(n, at: d)          // [..., n (which element is left out), n, ...]
        let spread = unsqueeze(d).expand(grid)
        var eyeShape = [Int](repeating: 1, count: rank + 1)
        eyeShape[d] = n
        eyeShape[d + 1] = n
        let diagonal = Tensor.eye(n, dtype: dtype).reshape(eyeShape)
        return Tensor.where(diagonal, scalarLike(1), spread).prod(dim: d + 1)
    }
}
