/// Compares the gradients backward computes with central finite differences, like
/// `torch.autograd.gradcheck`. Use float64 inputs: float32 differences are too noisy.
///
/// Every output element is seeded in turn (one backward each) to build the analytical Jacobian;
/// every input element is nudged by ±eps to build the numerical one.
///
/// - Returns: true when every entry agrees within `atol + rtol * |numerical|`.
/// - Throws: `AutogradError.gradcheckFailed` naming the first disagreeing entry.
@discardableResult
public func gradcheck(_ function: ([Tensor]) -> Tensor, inputs: [Tensor],
                      eps: Double = 1e-6, atol: Double = 1e-5, rtol: Double = 1e-3) throws -> Bool {
    for (i, x) in inputs.enumerated() where x.requiresGrad && x.dtype != .float64 {
        throw AutogradError.gradcheckFailed("input \(i) is \(x.dtype); gradcheck needs float64 inputs")
    }
    let differentiable = inputs.enumerated().filter { $0.element.requiresGrad }
    guard !differentiable.isEmpty else {
        throw AutogradError.gradcheckFailed("no input requires grad")
    }
    let reference = noGrad { function(inputs) }
    let outCount = reference.count

    // Analytical Jacobian: analytical[input][outIndex][inIndex].
    var analytical = differentiable.map { _ in [[Double]]() }
    let output = function(inputs)
    for j in 0..<outCount {
        var seed = [Double](repeating: 0, count: outCount)
        seed[j] = 1
        let grads: [Tensor?]
        if output.requiresGrad {
            grads = try grad(of: [output], wrt: differentiable.map(\.element),
                             gradOutputs: [Tensor(seed, shape: output.shape, dtype: output.dtype)], retainGraph: true)
        } else {
            grads = differentiable.map { _ in nil }
        }
        for (k, g) in grads.enumerated() {
            analytical[k].append(g?.doubleScalars ?? [Double](repeating: 0, count: differentiable[k].element.count))
        }
    }

    // Numerical Jacobian, nudging each element in place.
    for (k, (i, x)) in differentiable.enumerated() {
        let p = x.pointer(Double.self)
        for e in 0..<x.count {
            let original = p[e]
            p[e] = original + eps
            let plus = noGrad { function(inputs) }.doubleScalars
            p[e] = original - eps
            let minus = noGrad { function(inputs) }.doubleScalars
            p[e] = original
            for j in 0..<outCount {
                let numerical = (plus[j] - minus[j]) / (2 * eps)
                let a = analytical[k][j][e]
                if !(Swift.abs(a - numerical) <= atol + rtol * Swift.abs(numerical)) {
                    throw AutogradError.gradcheckFailed(
                        "input \(i) element \(e), output element \(j): backward gives \(a), finite differences give \(numerical)")
                }
            }
        }
    }
    return true
}

/// Checks second derivatives: runs `gradcheck` on the function that maps the inputs to the
/// gradients of `sum(function(inputs) * v)` (built with `createGraph`), for a fixed random `v`.
@discardableResult
public func gradgradcheck(_ function: @escaping ([Tensor]) -> Tensor, inputs: [Tensor],
                          eps: Double = 1e-6, atol: Double = 1e-5, rtol: Double = 1e-3,
                          generator: Generator = Generator(seed: 7)) throws -> Bool {
    let shape = noGrad { function(inputs) }.shape
    let v = Tensor.randn(shape, dtype: .float64, generator: generator)
    let differentiable = inputs.filter(\.requiresGrad)
    return try gradcheck({ xs in
        // The first derivative must be recorded even when gradcheck evaluates under noGrad.
        enableGrad {
            let out = function(xs)
            let grads = out.requiresGrad
                ? (try? grad(of: [out], wrt: differentiable, gradOutputs: [v], createGraph: true)) ?? [] : []
            let flat = differentiable.enumerated().map { i, x in
                (i < grads.count ? grads[i] : nil).map { $0.flatten() } ?? Tensor.zeros([x.count], dtype: x.dtype)
            }
            return Tensor.concat(flat)
        }
    }, inputs: inputs, eps: eps, atol: atol, rtol: rtol)
}
