/// What a custom function's forward leaves for its backward (`ctx` in PyTorch).
public final class FunctionContext {
    /// Tensors saved by forward for backward.
    public private(set) var savedTensors: [Tensor] = []
    /// Any other values forward wants backward to see.
    public var values: [String: Double] = [:]
    /// Which inputs require grad, in argument order.
    public internal(set) var needsInputGrad: [Bool] = []

    public func saveForBackward(_ tensors: Tensor...) { savedTensors = tensors }
    public func saveForBackward(_ tensors: [Tensor]) { savedTensors = tensors }
}

/// A differentiable operation whose forward and backward the user writes, like
/// `torch.autograd.Function`.
///
/// ```swift
/// enum Cube: CustomFunction {
///     static func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> Tensor {
///         ctx.saveForBackward(inputs[0])
///         return inputs[0] * inputs[0] * inputs[0]
///     }
///     static func backward(_ ctx: FunctionContext, _ gradOutput: Tensor) -> [Tensor?] {
///         let x = ctx.savedTensors[0]
///         return [gradOutput * x * x * 3]
///     }
/// }
/// let y = Cube.apply(x)
/// ```
public protocol CustomFunction {
    /// Computes the output; runs without recording, so it may use any op.
    static func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> Tensor
    /// Maps the gradient of the output to one gradient per input (nil for none).
    static func backward(_ ctx: FunctionContext, _ gradOutput: Tensor) -> [Tensor?]
}

extension CustomFunction {
    public static func apply(_ inputs: Tensor...) -> Tensor { apply(inputs) }

    public static func apply(_ inputs: [Tensor]) -> Tensor {
        let ctx = FunctionContext()
        ctx.needsInputGrad = inputs.map(\.requiresGrad)
        // Forward sees detached inputs, so nothing it does is recorded or linked to the graph.
        let output = noGrad { forward(ctx, inputs.map { $0.detach() }) }
        let result = output.gradFn == nil ? output : output.detach()
        return result.recordOp("\(Self.self)Backward", inputs) { g in
            let grads = backward(ctx, g)
            require(grads.count == inputs.count,
                         "\(Self.self).backward returned \(grads.count) gradients for \(inputs.count) inputs")
            for (i, (input, grad)) in zip(inputs, grads).enumerated() {
                if let grad {
                    require(grad.shape == input.shape,
                                 "\(Self.self).backward: gradient \(i) has shape \(grad.shape), input has \(input.shape)")
                }
            }
            return grads
        }
    }
}
