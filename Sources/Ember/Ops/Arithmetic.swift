/// Broadcasting arithmetic: `+ - * /`, `pow`, `maximum`, `minimum`, with their gradients.
extension Tensor {
    /// The dtype two operands compute in: float64 beats float32 beats bfloat16 beats int64, as in PyTorch.
    static func promoted(_ a: DType, _ b: DType) -> DType {
        if a == .float64 || b == .float64 { return .float64 }
        if a == .float32 || b == .float32 { return .float32 }
        if a == .bfloat16 || b == .bfloat16 { return .bfloat16 }
        return .int64
    }

    /// The dtype of a binary op's result, following PyTorch: a zero-dimensional operand (a Swift
    /// literal or scalar) adopts the other operand's dtype unless it is floating point and the other is not.
    static func resultType(_ a: Tensor, _ b: Tensor) -> DType {
        if a.rank == 0 && b.rank > 0 { return a.dtype.isFloatingPoint && !b.dtype.isFloatingPoint ? .float32 : b.dtype }
        if b.rank == 0 && a.rank > 0 { return b.dtype.isFloatingPoint && !a.dtype.isFloatingPoint ? .float32 : a.dtype }
        return promoted(a.dtype, b.dtype)
    }

    /// Runs a broadcasting binary kernel after promoting both operands to a common dtype
    /// (floating point for `div` and `pow`); records nothing.
    static func binaryKernel(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> (Tensor, Tensor, Tensor) {
        var dtype = resultType(a, b)
        if dtype == .int64 && (op == .div || op == .pow) { dtype = .float32 }
        let a = a.to(dtype), b = b.to(dtype)
        let shape = check { try Shapes.broadcast(a.shape, b.shape) }
        return (a, b, Kernels.binary(op, a, b, shape: shape))
    }

    /// A scalar operand in this tensor's dtype (float32 for integer tensors under `div`).
    func scalarLike(_ value: Double) -> Tensor {
        Tensor(scalar: value, dtype: dtype)
    }

    /// Sums a broadcast gradient back to `shape`: over the leading dimensions `shape` lacks and
    /// over those where it has size 1. Every broadcasting op's backward goes through here.
    public func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        require(lead >= 0, "cannot sum shape \(shape) down to \(target)")
        var dims = Array(0..<lead)
        for i in target.indices where target[i] == 1 && shape[lead + i] != 1 { dims.append(lead + i) }
        return sum(dims: dims, keepDim: true).reshape(target)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (a, b, out) = binaryKernel(.add, a, b)
        return out.recordOp("AddBackward", [a, b]) { g in [g.sumTo(a.shape), g.sumTo(b.shape)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (a, b, out) = binaryKernel(.sub, a, b)
        return out.recordOp("SubBackward", [a, b]) { g in [g.sumTo(a.shape), (-g).sumTo(b.shape)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (a, b, out) = binaryKernel(.mul, a, b)
        return out.recordOp("MulBackward", [a, b]) { g in
            [a.requiresGrad ? (g * b).sumTo(a.shape) : nil, b.requiresGrad ? (g * a).sumTo(b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (a, b, out) = binaryKernel(.div, a, b)
        return out.recordOp("DivBackward", [a, b]) { g in
            [a.requiresGrad ? (g / b).sumTo(a.shape) : nil,
             b.requiresGrad ? (-g * a / (b * b)).sumTo(b.shape) : nil]
        }
    }

    public static prefix func - (x: Tensor) -> Tensor {
        x.unaryOp(.neg, "NegBackward") { _, _, g in -g }
    }

    /// Elementwise `self ^ exponent` with broadcasting.
    @_disfavoredOverload
    public func pow(_ exponent: Tensor) -> Tensor {
        let (a, b, out) = Tensor.binaryKernel(.pow, self, exponent)
        return out.recordOp("PowBackward", [a, b]) { g in
            let ga = a.requiresGrad ? (g * b * a.pow(b - 1)).sumTo(a.shape) : nil
            // d/db a^b = a^b log a, taken as 0 where a == 0 (PyTorch's convention).
            let gb = b.requiresGrad
                ? (g * a.pow(b) * Tensor.where(a.eq(0), a.scalarLike(0), a.log())).sumTo(b.shape) : nil
            return [ga, gb]
        }
    }

    /// Elementwise maximum; ties split the gradient evenly, as in PyTorch.
    public func maximum(_ other: Tensor) -> Tensor { extremum(.maximum, other, "MaximumBackward") }
    /// Elementwise minimum; ties split the gradient evenly, as in PyTorch.
    public func minimum(_ other: Tensor) -> Tensor { extremum(.minimum, other, "MinimumBackward") }

    private func extremum(_ op: BinaryOp, _ other: Tensor, _ name: String) -> Tensor {
        let (a, b, out) = Tensor.binaryKernel(op, self, other)
        return out.recordOp(name, [a, b]) { g in
            let aWins = op == .maximum ? a.gt(b) : a.lt(b)
            let share = aWins + a.eq(b) * 0.5
            return [(g * share).sumTo(a.shape), (g * (1 - share)).sumTo(b.shape)]
        }
    }

    // MARK: Scalars on either side
    // Float and Double scalars both work. The Double forms are disfavoured so that a literal
    // (`x * 0.5`) stays a Float as before, and `[Double].reduce(0, +)` keeps meaning Double's `+`.

    public static func + (a: Tensor, s: Float) -> Tensor { a + a.scalarLike(Double(s)) }
    public static func + (s: Float, a: Tensor) -> Tensor { a.scalarLike(Double(s)) + a }
    public static func - (a: Tensor, s: Float) -> Tensor { a - a.scalarLike(Double(s)) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.scalarLike(Double(s)) - a }
    public static func * (a: Tensor, s: Float) -> Tensor { a * a.scalarLike(Double(s)) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.scalarLike(Double(s)) * a }
    public static func / (a: Tensor, s: Float) -> Tensor { a / a.scalarLike(Double(s)) }
    public static func / (s: Float, a: Tensor) -> Tensor { a.scalarLike(Double(s)) / a }

    @_disfavoredOverload public static func + (a: Tensor, s: Double) -> Tensor { a + a.scalarLike(s) }
    @_disfavoredOverload public static func + (s: Double, a: Tensor) -> Tensor { a.scalarLike(s) + a }
    @_disfavoredOverload public static func - (a: Tensor, s: Double) -> Tensor { a - a.scalarLike(s) }
    @_disfavoredOverload public static func - (s: Double, a: Tensor) -> Tensor { a.scalarLike(s) - a }
    @_disfavoredOverload public static func * (a: Tensor, s: Double) -> Tensor { a * a.scalarLike(s) }
    @_disfavoredOverload public static func * (s: Double, a: Tensor) -> Tensor { a.scalarLike(s) * a }
    @_disfavoredOverload public static func / (a: Tensor, s: Double) -> Tensor { a / a.scalarLike(s) }
    @_disfavoredOverload public static func / (s: Double, a: Tensor) -> Tensor { a.scalarLike(s) / a }

    /// Elementwise power by a constant.
    public func pow(_ exponent: Double) -> Tensor {
        unaryOp(.powScalar(exponent), "PowBackward") { x, _, g in
            exponent == 0 ? g * 0 : g * (x.pow(exponent - 1) * x.scalarLike(exponent))
        }
    }

    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }
    public static func /= (a: inout Tensor, b: Tensor) { a = a / b }

    // Named forms, as in PyTorch.
    public func add(_ other: Tensor) -> Tensor { self + other }
    public func sub(_ other: Tensor) -> Tensor { self - other }
    public func mul(_ other: Tensor) -> Tensor { self * other }
    public func div(_ other: Tensor) -> Tensor { self / other }
}
