import Synchronization

/// Reverse-mode differentiation over the recorded graph.
///
/// The graph is walked in reverse topological order (found iteratively, so a graph of any depth
/// cannot overflow the stack). Each tensor's gradient is complete when it is reached, because every
/// consumer of a tensor comes after it in topological order. Gradients from several consumers add.
enum Engine {
    /// Distinguishes runs (several threads may run backward at once, on their own graphs).
    private static let runs = Atomic<Int>(0)

    /// Runs backward from `roots` seeded with `seeds`. With `capture`, returns the gradients of
    /// those tensors instead of accumulating into leaves' `.grad` (what `grad(of:wrt:)` needs).
    static func run(roots: [Tensor], seeds: [Tensor], retainGraph: Bool, createGraph: Bool,
                    capture: [Tensor]? = nil, allowUnused: Bool = true) throws -> [Tensor?] {
        let run = runs.add(1, ordering: .relaxed).newValue
        let accumulate = capture == nil
        let order = topologicalOrder(roots, run: run, countUses: accumulate)
        for (root, seed) in zip(roots, seeds) { add(seed, to: root) }

        var captured = [Tensor?](repeating: nil, count: capture?.count ?? 0)
        defer { for t in order { t.engineGrad = nil } }

        let backward = BackwardRun()
        try BackwardRun.with(backward) {
            try withGradMode(createGraph) {
                for t in order.reversed() {
                    guard var g = t.engineGrad else { continue }
                    t.engineGrad = nil
                    for (_, hook) in t.gradHooks { if let replaced = hook(g) { g = replaced } }
                    if let capture {
                        for (i, c) in capture.enumerated() where c === t { captured[i] = g }
                    }

                    if let node = t.gradFn {
                        if accumulate && t.retainsGrad { t.accumulateGrad(g, createGraph: createGraph) }
                        let outputs = GradientOutputs.offered(to: node.inputs, accumulating: accumulate && !createGraph)
                        let inputGrads = try node.apply(g, outputs: outputs)
                        for (input, ig) in zip(node.inputs, inputGrads) {
                            guard let input, let ig else { continue }
                            require(ig.shape == input.shape,
                                         "\(node.name) produced a gradient of shape \(ig.shape) for an input of shape \(input.shape)")
                            add(ig, to: input)
                        }
                        if !retainGraph { node.free() }
                    } else if accumulate && t.leafRequiresGrad {
                        // The last use of `g` here: accumulateGrad may keep it rather than copy it.
                        t.accumulateGrad(&g, createGraph: createGraph, canKeep: true)
                        for (_, hook) in t.postAccumulateHooks { hook(t) }
                    }
                }
            }
            try backward.finish()
        }
        return captured
    }

    private static func add(_ g: Tensor, to t: Tensor) {
        t.engineGrad = t.engineGrad.map { $0 + g } ?? g
    }

    /// Post-order DFS with an explicit stack: inputs come before the tensors computed from them.
    /// Visiting a tensor also clears any gradient a failed earlier run left on it. With
    /// `countUses`, each tensor's `engineUses` ends as the number of graph edges into it.
    static func topologicalOrder(_ roots: [Tensor], run: Int, countUses: Bool = false) -> [Tensor] {
        var order: [Tensor] = []
        var stack: [(tensor: Tensor, next: Int)] = []
        func visit(_ t: Tensor) -> Bool {
            guard t.engineMark != run else { return false }
            t.engineMark = run
            t.engineGrad = nil
            t.engineUses = 0
            return true
        }
        for root in roots where visit(root) {
            stack.append((root, 0))
            while let (t, next) = stack.last {
                let inputs = t.gradFn?.inputs ?? []
                if next < inputs.count {
                    stack[stack.count - 1].next += 1
                    if let input = inputs[next] {
                        if visit(input) { stack.append((input, 0)) }
                        if countUses { input.engineUses += 1 }
                    }
                } else {
                    order.append(t)
                    stack.removeLast()
                }
            }
        }
        return order
    }
}

extension Tensor {
    /// Adds `g` into `.grad`: in place when the existing gradient is a plain buffer, out of place
    /// (and recorded) under `createGraph`.
    func accumulateGrad(_ g: Tensor, createGraph: Bool) {
        var g = g
        accumulateGrad(&g, createGraph: createGraph, canKeep: false)
    }

    /// With `canKeep`, the caller holds `g` only to hand it over, so a gradient nothing else
    /// references can become `.grad` itself instead of a copy.
    func accumulateGrad(_ g: inout Tensor, createGraph: Bool, canKeep: Bool) {
        if createGraph {
            grad = grad.map { $0 + g } ?? g
            return
        }
        if let existing = grad, existing.gradFn == nil {
            let destination = gradientDestination.flatMap { $0.buffer === existing ? $0 : nil }
            Kernels.addInPlace(existing, g, scale: destination?.scale ?? 1)
        } else if let existing = grad {
            grad = (existing + g).detach()
        } else if let destination = gradientDestination {
            // A rule that was offered the buffer wrote it already, scaled.
            if g !== destination.buffer { Kernels.copy(g, into: destination.buffer, scale: destination.scale) }
            grad = destination.buffer
        } else if canKeep && !g.requiresGrad && isKnownUniquelyReferenced(&g) && isKnownUniquelyReferenced(&g.storage)
                    && g.byteOffset == 0 && g.storage.byteCount == g.count * g.dtype.byteSize {
            // Nothing else can see this gradient (no other tensor, view or user holds it), so it
            // becomes `.grad` as it is, as in PyTorch: no copy.
            grad = g
        } else {
            // A fresh buffer, so later in-place accumulation never writes into a tensor that
            // another gradient or the user still holds.
            grad = g.clone()
        }
    }

    /// Computes the gradient of this tensor with respect to every leaf that requires grad and
    /// adds it into their `.grad`.
    ///
    /// - Parameters:
    ///   - gradient: d(something)/d(self); required unless `self` has one element.
    ///   - retainGraph: keep the graph so backward can run through it again (defaults to
    ///     `createGraph`, as in PyTorch: a recorded gradient still needs the graph it came from).
    ///   - createGraph: record the backward pass, so gradients can be differentiated again.
    public func backward(gradient: Tensor? = nil, retainGraph: Bool? = nil, createGraph: Bool = false) {
        do {
            try checkedBackward(gradient: gradient, retainGraph: retainGraph, createGraph: createGraph)
        } catch {
            fatalError("\(error)")
        }
    }

    /// `backward` that throws `AutogradError` instead of stopping the program.
    public func checkedBackward(gradient: Tensor? = nil, retainGraph: Bool? = nil, createGraph: Bool = false) throws {
        guard requiresGrad else {
            throw AutogradError.notDifferentiable(
                "backward() on a tensor that does not require grad and has no grad_fn (shape \(shape))")
        }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape else {
                throw AutogradError.gradientShape(expected: shape, got: gradient.shape)
            }
            seed = gradient.dtype == dtype ? gradient : gradient.to(dtype)
        } else {
            guard count == 1 else {
                throw AutogradError.notDifferentiable(
                    "backward() without a gradient needs a one-element tensor, got shape \(shape); pass gradient:")
            }
            seed = Tensor.ones(shape, dtype: dtype)
        }
        _ = try Engine.run(roots: [self], seeds: [seed], retainGraph: retainGraph ?? createGraph, createGraph: createGraph)
    }
}

/// Gradients of `outputs` with respect to `inputs`, returned rather than accumulated into
/// `.grad` (`torch.autograd.grad`). An input the outputs do not depend on gets nil.
///
/// - Parameters:
///   - gradOutputs: one seed per output; defaults to ones for one-element outputs.
///   - createGraph: record the computation so the result can be differentiated again.
public func grad(of outputs: [Tensor], wrt inputs: [Tensor], gradOutputs: [Tensor]? = nil,
                 retainGraph: Bool? = nil, createGraph: Bool = false) throws -> [Tensor?] {
    let seeds = try gradOutputs ?? outputs.map { out in
        guard out.count == 1 else {
            throw AutogradError.notDifferentiable("grad(of:) needs gradOutputs for a non-scalar output of shape \(out.shape)")
        }
        return Tensor.ones(out.shape, dtype: out.dtype)
    }
    return try Engine.run(roots: outputs, seeds: seeds, retainGraph: retainGraph ?? createGraph,
                          createGraph: createGraph, capture: inputs)
}
