/// Reads and writes at integer indices: indexSelect / indexAdd and gather / scatterAdd, each
/// pair the other's gradient.
extension Tensor {
    fileprivate func checkIndexTensor(_ index: Tensor, _ op: String) {
        require(index.dtype == .int64, "\(op) needs an int64 index tensor, got \(index.dtype)")
    }

    /// The slices at `index` (1-D, int64) along `dim`.
    public func indexSelect(dim: Int, index: Tensor) -> Tensor {
        checkIndexTensor(index, "indexSelect")
        require(index.rank <= 1, "indexSelect needs a 1-D index, got shape \(index.shape)")
        let d = normalizeDim(dim)
        let (outer, size, inner) = Shapes.split(shape, at: d)
        var outShape = shape
        outShape[d] = index.count
        let out = Kernels.indexSelect(self, outer: outer, size: size, inner: inner, index: index, shape: outShape)
        return out.recordOp("IndexSelectBackward", [self]) { [full = shape] g in
            [g.indexAdded(dim: d, index: index, shape: full)]
        }
    }

    /// Zeros of `shape` with the slices of `self` added along `dim` at `index`.
    func indexAdded(dim d: Int, index: Tensor, shape full: [Int]) -> Tensor {
        let (outer, size, inner) = Shapes.split(full, at: d)
        let out = Kernels.indexAdd(self, outer: outer, size: size, inner: inner, index: index, shape: full)
        return out.recordOp("IndexAddBackward", [self]) { g in [g.indexSelect(dim: d, index: index)] }
    }

    /// `self` with the slices of `source` added along `dim` at `index` (out of place).
    public func indexAdd(dim: Int, index: Tensor, source: Tensor) -> Tensor {
        checkIndexTensor(index, "indexAdd")
        return self + source.indexAdded(dim: normalizeDim(dim), index: index, shape: shape)
    }

    /// `out[i][j][k] = self[i][index[i][j][k]][k]` for `dim == 1` (and likewise for other dims).
    /// `index` has this tensor's shape except along `dim`.
    public func gather(dim: Int, index: Tensor) -> Tensor {
        checkIndexTensor(index, "gather")
        let d = normalizeDim(dim)
        require(index.rank == rank && (0..<rank).allSatisfy { $0 == d || index.shape[$0] == shape[$0] },
                     "gather along dimension \(dim): index shape \(index.shape) must match input shape \(shape) outside that dimension")
        let (outer, size, inner) = Shapes.split(shape, at: d)
        let out = Kernels.gather(self, outer: outer, size: size, inner: inner, index: index)
        return out.recordOp("GatherBackward", [self]) { [full = shape] g in
            [g.scattered(dim: d, index: index, shape: full)]
        }
    }

    /// Zeros of `shape` with `self` added at `index` along `dim` (gather's adjoint).
    func scattered(dim d: Int, index: Tensor, shape full: [Int]) -> Tensor {
        let (outer, size, inner) = Shapes.split(full, at: d)
        let out = Kernels.scatterAdd(self, outer: outer, size: size, inner: inner, index: index, shape: full)
        return out.recordOp("ScatterAddBackward", [self]) { g in [g.gather(dim: d, index: index)] }
    }

    /// `self` with `src[i][j][k]` added at `[i][index[i][j][k]][k]` for `dim == 1` (out of place).
    public func scatterAdd(dim: Int, index: Tensor, src: Tensor) -> Tensor {
        checkIndexTensor(index, "scatterAdd")
        require(index.shape == src.shape, "scatterAdd needs index and src of one shape, got \(index.shape) and \(src.shape)")
        return self + src.scattered(dim: normalizeDim(dim), index: index, shape: shape)
    }

    /// `torch.nn.functional.embedding`: the rows of `weight` at the int64 indices of `input`,
    /// shape `input.shape + [weight.shape[1]]`. Rows looked up for `paddingIdx` get no gradient.
    public static func embedding(_ input: Tensor, _ weight: Tensor, paddingIdx: Int? = nil) -> Tensor {
        weight.checkIndexTensor(input, "embedding")
        require(weight.rank == 2, "embedding needs a 2-D weight, got shape \(weight.shape)")
        let index = input.flatten()
        let rows: Tensor
        if let paddingIdx {
            rows = noGrad { weight.indexSelect(dim: 0, index: index) }.recordOp("EmbeddingBackward", [weight]) { [full = weight.shape] g in
                let keep = index.ne(Double(paddingIdx)).to(g.dtype).unsqueeze(1)
                return [(g * keep).indexAdded(dim: 0, index: index, shape: full)]
            }
        } else {
            rows = weight.indexSelect(dim: 0, index: index)
        }
        return rows.reshape(input.shape + [weight.shape[1]])
    }

    /// One-hot rows for int64 class indices: shape `shape + [numClasses]`, float32.
    public func oneHot(numClasses: Int, dtype: DType = .float32) -> Tensor {
        checkIndexTensor(self, "oneHot")
        let out = Kernels.zeroed(shape + [numClasses], dtype: .float64)
        let idx = pointer(Int64.self), p = out.pointer(Double.self)
        for i in 0..<count {
            p[i * numClasses + Kernels.checkIndex(idx[i], numClasses, "oneHot")] = 1
        }
        return out.to(dtype)
    }
}
