import Synchronization

/// One recorded op in the dynamic graph: its inputs and the rule that maps the gradient of its
/// output to gradients of those inputs.
///
/// A node holds its inputs strongly and its output not at all, so the graph is a DAG of plain
/// references that disappears when the last output tensor goes away.
final class GradNode {
    static let liveCount = Atomic<Int>(0)

    let name: String
    /// Inputs in argument order; nil where that input does not require grad.
    private(set) var inputs: [Tensor?]
    /// Gradient of the output → gradients of the inputs (nil entries for inputs without grad).
    /// The second argument offers, per input, a buffer the engine would like that input's
    /// gradient computed into (see `GradientOutput`); most rules ignore it.
    private var rule: ((Tensor, GradientOutputs) -> [Tensor?])?

    init(name: String, inputs: [Tensor?], rule: @escaping (Tensor, GradientOutputs) -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.rule = rule
        GradNode.liveCount.add(1, ordering: .relaxed)
    }

    deinit {
        GradNode.liveCount.subtract(1, ordering: .relaxed)
        // Releasing a long chain recursively (tensor → node → tensor → ...) would overflow the
        // stack; unlink the nodes nobody else holds here, one at a time, instead.
        // The rule's closure captures the inputs too, so it goes first.
        var pending = inputs.compactMap { $0 }
        inputs = []
        rule = nil
        while var t = pending.popLast() {
            guard isKnownUniquelyReferenced(&t), var owned = t.gradFn else { continue }
            t.gradFn = nil
            if isKnownUniquelyReferenced(&owned) {
                pending.append(contentsOf: owned.inputs.compactMap { $0 })
                owned.inputs = []
                owned.rule = nil
            }
        }
    }

    var isFreed: Bool { rule == nil }

    func apply(_ gradOutput: Tensor, outputs: GradientOutputs) throws -> [Tensor?] {
        guard let rule else {
            throw AutogradError.graphFreed(node: name)
        }
        let grads = rule(gradOutput, outputs)
        require(grads.count == inputs.count, "\(name) returned \(grads.count) gradients for \(inputs.count) inputs")
        return grads
    }

    /// Drops the saved tensors and inputs; what backward does unless `retainGraph` is set.
    func free() {
        rule = nil
        inputs = []
    }
}

/// Errors a user can cause while differentiating.
public enum AutogradError: Error, CustomStringConvertible, Equatable {
    case graphFreed(node: String)
    case notDifferentiable(String)
    case gradientShape(expected: [Int], got: [Int])
    case gradcheckFailed(String)

    public var description: String {
        switch self {
        case .graphFreed(let node):
            return "Trying to backward through the graph a second time (at \(node)): its saved values were freed "
                + "by the first backward. Pass retainGraph: true to the first backward if you need to call it twice."
        case .notDifferentiable(let why): return why
        case .gradientShape(let expected, let got):
            return "gradient has shape \(got) but the tensor has shape \(expected)"
        case .gradcheckFailed(let why): return "gradcheck failed: \(why)"
        }
    }
}

extension Tensor {
    /// Records `self` as produced by an op over `inputs`, when grad mode is on and any input
    /// requires grad. `rule` maps the gradient of `self` to one gradient per input.
    ///
    /// Rules are written with Tensor ops, so with `createGraph: true` the backward pass is itself
    /// recorded and can be differentiated again.
    @discardableResult
    func recordOp(_ name: String, _ inputs: [Tensor], rule: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        recordOp(name, inputs, writingInto: { g, _ in rule(g) })
    }

    /// `recordOp` for a rule that can compute some input's gradient straight into a buffer the
    /// engine offers (`outputs[i]`, nil when there is none), saving an allocation and a copy:
    /// returning that buffer, written as `GradientOutput` says, tells the engine it was used.
    @discardableResult
    func recordOp(_ name: String, _ inputs: [Tensor], writingInto rule: @escaping (Tensor, GradientOutputs) -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return self }
        require(dtype.isFloatingPoint, "\(name) produced a \(dtype) tensor, which cannot carry gradients")
        gradFn = GradNode(name: name, inputs: inputs.map { $0.requiresGrad ? $0 : nil }, rule: rule)
        return self
    }
}
