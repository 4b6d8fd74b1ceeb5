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
        require(gradient.count == range.count, "a slice of \(range.count) elements needs as many gradient values (got \(gradient.count))")
        self.index = index
        self.range = range
        self.gradient = gradient
    }
}

extension Optimizer {
    /// Updates only the given element ranges, exactly as `step()` would update those elements.
    ///
    /// Every optimizer here updates element by element, so a slice is updated by running
    /// `update` on views of the parameter and of its per-element state (momentum, moment
    /// estimates). A parameter's per-element state then holds only its slice (shape
    /// `[range.count]`; a whole-shaped tensor, as loaded from a checkpoint, is cut down to the
    /// slice): that is the memory a sharded step saves. Keep each parameter's slice the same
    /// from step to step, and assemble whole state for saving with `DataParallel.optimizerStateDict`.
    /// Other state (the step count) is stored as `update` leaves it. A slice covering a whole
    /// parameter is an ordinary update. At most one slice per parameter: each is one update (one
    /// more step in the parameter's count), as on each rank of a sharded step.
    public func step(slices: [ParameterSlice]) {
        guard !slices.isEmpty else { return }
        require(Set(slices.map(\.index)).count == slices.count, "step(slices:) takes at most one slice per parameter")
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

    private func update(part range: Range<Int>, of p: Tensor, gradient: Tensor, state: inout [String: Tensor], group: ParamGroup) {
        let shape = [range.count]
        // A partial range only exists for parameters of two or more elements, so a state tensor
        // of the parameter's shape is per-element and never the scalar step count.
        var views: [String: Tensor] = [:]
        for (key, t) in state {
            require(t.shape == p.shape || t.rank == 0 || t.shape == shape,
                         "state '\(key)' of shape \(t.shape) was made for another slice of a parameter of shape \(p.shape); slices must stay the same between steps")
            views[key] = t.shape == p.shape ? t.flatView(offset: range.lowerBound, shape: shape) : t
        }
        update(parameter: p.flatView(offset: range.lowerBound, shape: shape), gradient: gradient, state: &views, group: group)
        for (key, t) in views {
            // A view into whole-shaped state becomes a compact copy, so the whole one is freed.
            state[key] = t.shape == shape && state[key].map({ $0.storage === t.storage && $0.count > t.count }) == true ? t.clone() : t
        }
    }
}
