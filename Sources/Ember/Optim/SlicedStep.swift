/// A contiguous run of one parameter's elements and the gradient for exactly those elements:
/// the unit of a sharded optimizer step, where each data-parallel rank updates only its shard.
public struct ParameterSlice {
    /// The parameter's position across all groups (the key of `Optimizer.state`).
    public let index: Int
    /// Element range within the flattened parameter.
    public let range: Range<Int>
    /// `range.count` gradient values.
    public let gradient: Tensor

    public init(index: Int, range: Range<Int>, gradient: Tensor) {
        precondition(gradient.count == range.count, "a slice of \(range.count) elements needs as many gradient values (got \(gradient.count))")
        self.index = index
        self.range = range
        self.gradient = gradient
    }
}

extension Optimizer {
    /// Updates only the given element ranges, exactly as `step()` would update those elements.
    ///
    /// Every optimizer here updates element by element, so a slice is updated by running
    /// `update` on views: of the parameter, and of each state tensor shaped like the parameter
    /// (momentum, moment estimates). State a slice creates is placed in a zero tensor of the
    /// parameter's full shape, so `state` keeps the shapes `step()` gives it; other state (the
    /// step count) is stored as `update` leaves it. A slice covering a whole parameter is an
    /// ordinary update. At most one slice per parameter: each is one update (one more step in
    /// the parameter's count), as on each rank of a sharded step.
    public func step(slices: [ParameterSlice]) {
        guard !slices.isEmpty else { return }
        precondition(Set(slices.map(\.index)).count == slices.count, "step(slices:) takes at most one slice per parameter")
        var owners: [(Tensor, ParamGroup)] = []
        for g in paramGroups { for p in g.params { owners.append((p, g)) } }
        noGrad {
            for slice in slices {
                let (p, group) = owners[slice.index]
                let gradient = slice.gradient.dtype == p.dtype ? slice.gradient : slice.gradient.to(p.dtype)
                var full = state[slice.index] ?? [:]
                if slice.range == 0..<p.count {
                    update(parameter: p, gradient: gradient.reshape(p.shape), state: &full, group: group)
                } else {
                    update(part: slice.range, of: p, gradient: gradient, state: &full, group: group)
                }
                state[slice.index] = full
            }
        }
    }

    private func update(part range: Range<Int>, of p: Tensor, gradient: Tensor, state full: inout [String: Tensor], group: ParamGroup) {
        let shape = [range.count]
        func part(_ t: Tensor) -> Tensor { t.flatView(offset: range.lowerBound, shape: shape) }
        // A partial range only exists for parameters of two or more elements, so a state tensor
        // of the parameter's shape is per-element and never the scalar step count.
        var views: [String: Tensor] = [:]
        for (key, t) in full { views[key] = t.shape == p.shape ? part(t) : t }
        let before = views
        update(parameter: part(p), gradient: gradient, state: &views, group: group)
        for (key, t) in views {
            if let old = before[key], old === t { continue }  // updated in place
            if t.shape == shape, t.count == range.count, full[key] == nil || full[key]!.shape == p.shape {
                let whole = full[key] ?? Tensor.zeros(p.shape, dtype: t.dtype)
                part(whole).copy_(t)
                full[key] = whole
            } else {
                full[key] = t
            }
        }
    }
}
