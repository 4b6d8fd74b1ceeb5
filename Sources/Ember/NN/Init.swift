import Foundation

/// Weight initialisation, as `torch.nn.init`. Each function fills a tensor in place (no graph)
/// from the given generator and returns it.
public enum Init {
    /// `(fanIn, fanOut)` of a weight: for `[out, in, k...]`, `in * k...` and `out * k...`.
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        require(shape.count >= 2, "fan in and fan out need at least 2 dimensions, got \(shape)")
        let receptive = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * receptive, shape[0] * receptive)
    }

    /// The gain PyTorch recommends for a nonlinearity (`calculate_gain`).
    public static func gain(_ nonlinearity: String, param: Double? = nil) -> Double {
        switch nonlinearity {
        case "relu": return 2.0.squareRoot()
        case "tanh": return 5.0 / 3
        case "leaky_relu":
            let slope = param ?? 0.01
            return (2.0 / (1 + slope * slope)).squareRoot()
        case "selu": return 0.75
        default: return 1  // linear, conv, sigmoid
        }
    }

    private static func set(_ t: Tensor, _ values: Tensor) -> Tensor {
        noGrad { t.copy_(values) }
        return t
    }

    @discardableResult
    public static func uniform(_ t: Tensor, low: Double = 0, high: Double = 1, generator: Generator = .default) -> Tensor {
        set(t, Tensor.rand(t.shape, low: low, high: high, dtype: t.dtype, generator: generator))
    }

    @discardableResult
    public static func normal(_ t: Tensor, mean: Double = 0, std: Double = 1, generator: Generator = .default) -> Tensor {
        set(t, Tensor.randn(t.shape, mean: mean, std: std, dtype: t.dtype, generator: generator))
    }

    @discardableResult
    public static func constant(_ t: Tensor, _ value: Double) -> Tensor {
        t.fill(value)
        return t
    }

    @discardableResult
    public static func zeros(_ t: Tensor) -> Tensor { constant(t, 0) }

    @discardableResult
    public static func ones(_ t: Tensor) -> Tensor { constant(t, 1) }

    @discardableResult
    public static func xavierUniform(_ t: Tensor, gain: Double = 1, generator: Generator = .default) -> Tensor {
        let (fanIn, fanOut) = fans(t.shape)
        let a = gain * (6.0 / Double(fanIn + fanOut)).squareRoot()
        return uniform(t, low: -a, high: a, generator: generator)
    }

    @discardableResult
    public static func xavierNormal(_ t: Tensor, gain: Double = 1, generator: Generator = .default) -> Tensor {
        let (fanIn, fanOut) = fans(t.shape)
        return normal(t, std: gain * (2.0 / Double(fanIn + fanOut)).squareRoot(), generator: generator)
    }

    /// Kaiming (He) uniform; `a` is the negative slope of the following leaky ReLU.
    @discardableResult
    public static func kaimingUniform(_ t: Tensor, a: Double = 0, fanOut: Bool = false,
                                      nonlinearity: String = "leaky_relu", generator: Generator = .default) -> Tensor {
        let fans = fans(t.shape)
        let fan = Double(fanOut ? fans.fanOut : fans.fanIn)
        let bound = gain(nonlinearity, param: a) * (3.0 / fan).squareRoot()
        return uniform(t, low: -bound, high: bound, generator: generator)
    }

    @discardableResult
    public static func kaimingNormal(_ t: Tensor, a: Double = 0, fanOut: Bool = false,
                                     nonlinearity: String = "leaky_relu", generator: Generator = .default) -> Tensor {
        let fans = fans(t.shape)
        let fan = Double(fanOut ? fans.fanOut : fans.fanIn)
        return normal(t, std: gain(nonlinearity, param: a) / fan.squareRoot(), generator: generator)
    }

    /// A layer's weight of `shape` and optional bias of `biasCount`, initialised as PyTorch's
    /// Linear and Conv layers are, wrapped for a module's `@Parameter` / `@OptionalParameter`.
    static func layerParameters(weight shape: [Int], biasCount: Int?, dtype: DType,
                                generator: Generator) -> (Parameter, OptionalParameter) {
        let w = Tensor.zeros(shape, dtype: dtype)
        let b = biasCount.map { Tensor.zeros([$0], dtype: dtype) }
        defaultLayer(weight: w, bias: b, generator: generator)
        return (Parameter(wrappedValue: w), OptionalParameter(wrappedValue: b))
    }

    /// PyTorch's default for Linear and Conv layers: Kaiming uniform with `a = sqrt(5)` for the
    /// weight (bound `1/sqrt(fanIn)`), and the bias uniform in `±1/sqrt(fanIn)`.
    static func defaultLayer(weight: Tensor, bias: Tensor?, generator: Generator) {
        kaimingUniform(weight, a: 5.0.squareRoot(), generator: generator)
        if let bias {
            let fanIn = fans(weight.shape).fanIn
            let bound = fanIn > 0 ? 1 / Double(fanIn).squareRoot() : 0
            uniform(bias, low: -bound, high: bound, generator: generator)
        }
    }
}
