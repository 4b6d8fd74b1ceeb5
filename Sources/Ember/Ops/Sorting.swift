/// Sorting along a dimension: sort, argsort, topk. Values are gathered at the sorting indices,
/// so their gradient flows back to where each value came from.
extension Tensor {
    /// The values along `dim` in ascending (or descending) order, and the indices they came
    /// from (`torch.sort`, stable: equal values keep their order).
    public func sort(dim: Int = -1, descending: Bool = false) -> (values: Tensor, indices: Tensor) {
        let d = normalizeDim(dim)
        guard rank > 0 else { return (self, Tensor(indices: [0], shape: [])) }
        let (outer, size, inner) = Shapes.split(shape, at: d)
        let indices = Kernels.sortIndices(self, outer: outer, size: size, inner: inner, descending: descending)
        return (gather(dim: d, index: indices), indices)
    }

    /// The indices that sort the tensor along `dim` (`torch.argsort`).
    public func argsort(dim: Int = -1, descending: Bool = false) -> Tensor {
        sort(dim: dim, descending: descending).indices
    }

    /// The `k` largest (or smallest) values along `dim` and their indices (`torch.topk`),
    /// largest first (smallest first with `largest: false`).
    public func topk(_ k: Int, dim: Int = -1, largest: Bool = true) -> (values: Tensor, indices: Tensor) {
        let d = normalizeDim(dim)
        let n = rank == 0 ? 1 : shape[d]
        require(k >= 0 && k <= n, "topk: k = \(k) is out of range for dimension \(dim) of size \(n) (shape \(shape))")
        let order = argsort(dim: d, descending: largest).narrow(dim: d, start: 0, length: k)
        return (gather(dim: d, index: order), order)
    }
}
