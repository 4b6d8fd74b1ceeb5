import CEmberSupport
/// Elementwise binary operations; every one broadcasts.
enum BinaryOp {
    case add, sub, mul, div, pow, maximum, minimum
    case eq, ne, lt, le, gt, ge

    var isComparison: Bool {
        switch self {
        case .eq, .ne, .lt, .le, .gt, .ge: return true
        default: return false
        }
    }
}

/// Elementwise unary operations, with their parameters.
enum UnaryOp {
    case neg, exp, log, sqrt, rsqrt, abs, sign, reciprocal, sin, cos, erf
    case relu, sigmoid, tanh, silu, gelu, geluTanh
    case leakyRelu(slope: Double)
    case elu(alpha: Double)
    case softplus(beta: Double, threshold: Double)
    case powScalar(Double)
    case clamp(min: Double, max: Double)
}

enum Kernels {
    // MARK: Binary

    /// `op(a, b)` with broadcasting into a new tensor of `outDType`; `a` and `b` share a dtype.
    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, shape: [Int]) -> Tensor {
        require(a.dtype == b.dtype, "binary kernel needs equal dtypes, got \(a.dtype) and \(b.dtype)")
        let out = Tensor(uninitializedShape: shape, dtype: a.dtype)
        // Same shapes and scalar operands (most ops) need no stride bookkeeping.
        let loop: StridedLoop
        if a.count == out.count && b.count == out.count {
            loop = StridedLoop(contiguous: out.count, aStride: 1, bStride: 1)
        } else if b.count == 1 && a.count == out.count {
            loop = StridedLoop(contiguous: out.count, aStride: 1, bStride: 0)
        } else if a.count == 1 && b.count == out.count {
            loop = StridedLoop(contiguous: out.count, aStride: 0, bStride: 1)
        } else {
            loop = StridedLoop(shape: shape,
                               aStrides: StridedLoop.broadcastStrides(a.shape, to: shape),
                               bStrides: StridedLoop.broadcastStrides(b.shape, to: shape))
        }
        switch a.dtype {
        case .float32: binaryFloat(op, a.pointer(Float.self), b.pointer(Float.self), out.pointer(Float.self), loop)
        case .float64: binaryFloat(op, a.pointer(Double.self), b.pointer(Double.self), out.pointer(Double.self), loop)
        case .int64: binaryInt(op, a.pointer(Int64.self), b.pointer(Int64.self), out.pointer(Int64.self), loop)
        case .bfloat16: stop(DType.bfloat16Refused("an elementwise op"))
        }
        return out
    }

    private static func binaryFloat<T: FloatElement>(_ op: BinaryOp, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
                                                    _ o: UnsafeMutablePointer<T>, _ loop: StridedLoop) {
        switch op {
        case .add: zip2(loop, a, b, o) { $0 + $1 }
        case .sub: zip2(loop, a, b, o) { $0 - $1 }
        case .mul: zip2(loop, a, b, o) { $0 * $1 }
        case .div: zip2(loop, a, b, o) { $0 / $1 }
        case .pow: zip2(loop, a, b, o) { T.pow($0, $1) }
        case .maximum: zip2(loop, a, b, o) { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }
        case .minimum: zip2(loop, a, b, o) { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }
        case .eq: zip2(loop, a, b, o) { $0 == $1 ? 1 : 0 }
        case .ne: zip2(loop, a, b, o) { $0 != $1 ? 1 : 0 }
        case .lt: zip2(loop, a, b, o) { $0 < $1 ? 1 : 0 }
        case .le: zip2(loop, a, b, o) { $0 <= $1 ? 1 : 0 }
        case .gt: zip2(loop, a, b, o) { $0 > $1 ? 1 : 0 }
        case .ge: zip2(loop, a, b, o) { $0 >= $1 ? 1 : 0 }
        }
    }

    private static func binaryInt(_ op: BinaryOp, _ a: UnsafePointer<Int64>, _ b: UnsafePointer<Int64>,
                                  _ o: UnsafeMutablePointer<Int64>, _ loop: StridedLoop) {
        switch op {
        case .add: zip2(loop, a, b, o) { $0 &+ $1 }
        case .sub: zip2(loop, a, b, o) { $0 &- $1 }
        case .mul: zip2(loop, a, b, o) { $0 &* $1 }
        case .maximum: zip2(loop, a, b, o) { Swift.max($0, $1) }
        case .minimum: zip2(loop, a, b, o) { Swift.min($0, $1) }
        case .eq: zip2(loop, a, b, o) { $0 == $1 ? 1 : 0 }
        case .ne: zip2(loop, a, b, o) { $0 != $1 ? 1 : 0 }
        case .lt: zip2(loop, a, b, o) { $0 < $1 ? 1 : 0 }
        case .le: zip2(loop, a, b, o) { $0 <= $1 ? 1 : 0 }
        case .gt: zip2(loop, a, b, o) { $0 > $1 ? 1 : 0 }
        case .ge: zip2(loop, a, b, o) { $0 >= $1 ? 1 : 0 }
        case .div, .pow: stop("integer \(op) is computed in floating point by the op layer")
        }
    }

    /// The row loop: `f` is inlined into three straight loops (both contiguous, either a scalar),
    /// which the compiler vectorises.
    @inline(__always)
    private static func zip2<T, U>(_ loop: StridedLoop, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
                                   _ o: UnsafeMutablePointer<U>, _ f: (T, T) -> U) {
        let n = loop.inner, sa = loop.aInner, sb = loop.bInner
        loop.forEachRow { ao, bo, oo in
            let pa = a + ao, pb = b + bo, po = o + oo
            if sa == 1 && sb == 1 {
                for i in 0..<n { po[i] = f(pa[i], pb[i]) }
            } else if sa == 0 && sb == 1 {
                let x = pa[0]
                for i in 0..<n { po[i] = f(x, pb[i]) }
            } else if sa == 1 && sb == 0 {
                let y = pb[0]
                for i in 0..<n { po[i] = f(pa[i], y) }
            } else {
                for i in 0..<n { po[i] = f(pa[i * sa], pb[i * sb]) }
            }
        }
    }

    // MARK: Unary

    static func unary(_ op: UnaryOp, _ x: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        if x.dtype == .float32, let kernel = vectorisedActivation(op) {
            let (o, v) = (out.pointer(Float.self), x.pointer(Float.self))
            share(x.count, grain: activationGrain) { start, end in kernel(o + start, v + start, end - start) }
            return out
        }
        switch x.dtype {
        case .float32: unaryFloat(op, x.pointer(Float.self), out.pointer(Float.self), x.count)
        case .float64: unaryFloat(op, x.pointer(Double.self), out.pointer(Double.self), x.count)
        case .int64, .bfloat16: stop(x.dtype.refusal("unary op \(op)"))
        }
        return out
    }

    /// GELU's gradient `g · (Φ(x) + x φ(x))` for float32 in one vectorised pass (Activations.c).
    /// `approximate: .tanh`: GPT-2's form (`ember_gelu_tanh_backward_f32`).
    static func geluBackward(_ g: Tensor, _ x: Tensor, approximate: GELUApproximation = .none) -> Tensor {
        activationBackward(approximate == .tanh ? ember_gelu_tanh_backward_f32 : ember_gelu_backward_f32, g, x)
    }

    /// SiLU's gradient `g · σ(x)(1 + x(1 − σ(x)))` for float32 in one vectorised pass.
    static func siluBackward(_ g: Tensor, _ x: Tensor) -> Tensor { activationBackward(ember_silu_backward_f32, g, x) }

    private static func activationBackward(_ kernel: (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int) -> Void,
                                           _ g: Tensor, _ x: Tensor) -> Tensor {
        let out = Tensor(uninitializedShape: x.shape, dtype: x.dtype)
        let (o, gp, xp) = (out.pointer(Float.self), g.pointer(Float.self), x.pointer(Float.self))
        share(x.count, grain: activationGrain) { start, end in kernel(o + start, gp + start, xp + start, end - start) }
        return out
    }

    /// The C kernel of an activation with one (Activations.c, float32, vectorised).
    private static func vectorisedActivation(_ op: UnaryOp) -> ((UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int) -> Void)? {
        switch op {
        case .gelu: ember_gelu_f32
        case .geluTanh: ember_gelu_tanh_f32
        case .silu: ember_silu_f32
        default: nil
        }
    }

    /// Values of an activation worth a product thread of their own (about 15 µs of one core's
    /// exponentials): smaller runs stay on the caller.
    private static let activationGrain = 1 << 14

    /// `out[i] = values[i].squareRoot()`, vectorised (in C: VectorMath.c).
    static func squareRoots<T: FloatElement>(_ out: UnsafeMutablePointer<T>, _ values: UnsafeMutablePointer<T>, count: Int) {
        if T.self == Float.self {
            ember_sqrt_f32(UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self), UnsafeRawPointer(values).assumingMemoryBound(to: Float.self), count)
        } else {
            ember_sqrt_f64(UnsafeMutableRawPointer(out).assumingMemoryBound(to: Double.self), UnsafeRawPointer(values).assumingMemoryBound(to: Double.self), count)
        }
    }

    private static func unaryFloat<T: FloatElement>(_ op: UnaryOp, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ n: Int) {
        switch op {
        case .neg: map(x, y, n) { -$0 }
        case .exp: map(x, y, n) { T.exp($0) }
        case .log: map(x, y, n) { T.log($0) }
        case .sqrt: squareRoots(y, UnsafeMutablePointer(mutating: x), count: n)
        case .rsqrt:
            squareRoots(y, UnsafeMutablePointer(mutating: x), count: n)
            for i in 0..<n { y[i] = 1 / y[i] }
        case .abs: map(x, y, n) { Swift.abs($0) }
        case .sign: map(x, y, n) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
        case .reciprocal: map(x, y, n) { 1 / $0 }
        case .sin: map(x, y, n) { T(_sin(Double($0))) }
        case .cos: map(x, y, n) { T(_cos(Double($0))) }
        case .erf: map(x, y, n) { T.erf($0) }
        case .relu: map(x, y, n) { $0 > 0 ? $0 : 0 }
        case .sigmoid: map(x, y, n) { sigmoid($0) }
        case .tanh: map(x, y, n) { T.tanh($0) }
        case .silu: map(x, y, n) { $0 * sigmoid($0) }
        case .gelu: map(x, y, n) { $0 * (1 + T.erf($0 * T(0.70710678118654752440))) / 2 }
        case .geluTanh: map(x, y, n) { v in v * (1 + T.tanh(T(0.79788456080286535588) * (v + T(0.044715) * v * v * v))) / 2 }
        case .leakyRelu(let s):
            let slope = T(s)
            map(x, y, n) { $0 > 0 ? $0 : $0 * slope }
        case .elu(let a):
            let alpha = T(a)
            map(x, y, n) { $0 > 0 ? $0 : alpha * T.expm1($0) }
        case .softplus(let b, let t):
            let beta = T(b), threshold = T(t)
            map(x, y, n) { $0 * beta > threshold ? $0 : T.log1p(T.exp($0 * beta)) / beta }
        case .powScalar(let p):
            if p == 2 {
                map(x, y, n) { $0 * $0 }
            } else {
                let e = T(p)
                map(x, y, n) { T.pow($0, e) }
            }
        case .clamp(let lo, let hi):
            let l = T(lo), h = T(hi)
            map(x, y, n) { $0.isNaN ? $0 : Swift.min(Swift.max($0, l), h) }
        }
    }

    @inline(__always)
    static func sigmoid<T: FloatElement>(_ v: T) -> T {
        // Split on the sign so exp never overflows.
        if v >= 0 { return 1 / (1 + T.exp(-v)) }
        let e = T.exp(v)
        return e / (1 + e)
    }

    @inline(__always)
    private static func map<T>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ n: Int, _ f: (T) -> T) {
        for i in 0..<n { y[i] = f(x[i]) }
    }

    // MARK: In place

    /// `dst += src` elementwise (equal shapes and dtypes); used to accumulate gradients.
    static func addInPlace(_ dst: Tensor, _ src: Tensor, scale: Double = 1) {
        require(dst.shape == src.shape && dst.dtype == src.dtype,
                     "cannot add \(src.shape) \(src.dtype) into \(dst.shape) \(dst.dtype)")
        switch dst.dtype {
        case .float32: axpy(Float(scale), src.pointer(Float.self), dst.pointer(Float.self), dst.count)
        case .float64: axpy(scale, src.pointer(Double.self), dst.pointer(Double.self), dst.count)
        case .int64:
            let d = dst.pointer(Int64.self), s = src.pointer(Int64.self)
            for i in 0..<dst.count { d[i] &+= s[i] }
        case .bfloat16: stop(DType.bfloat16Refused("in-place accumulation"))
        }
    }

    /// `dst = src · scale` for tensors of one shape (any dtypes; a plain copy when `scale` is 1).
    static func copy(_ src: Tensor, into dst: Tensor, scale: Double) {
        guard scale != 1 else { return dst.copy_(src) }
        require(dst.shape == src.shape && dst.dtype == src.dtype && dst.dtype.isFloatingPoint,
                     "cannot copy \(src.shape) \(src.dtype) into \(dst.shape) \(dst.dtype) with a scale")
        func run<T: FloatElement>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
            let a = T(scale)
            for i in 0..<dst.count { y[i] = x[i] * a }
        }
        dst.dtype == .float64 ? run(src.pointer(Double.self), dst.pointer(Double.self))
            : run(src.pointer(Float.self), dst.pointer(Float.self))
    }

    /// `y += alpha * x` over `n` contiguous elements.
    @inline(__always)
    static func axpy<T: FloatElement>(_ alpha: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ n: Int) {
        if alpha == 1 {
            for i in 0..<n { y[i] += x[i] }
        } else {
            for i in 0..<n { y[i] += alpha * x[i] }
        }
    }

    /// Converts values between dtypes (same shape).
    static func convert(_ src: Tensor, into dst: Tensor) {
        require(src.count == dst.count, "convert: \(src.count) values into \(dst.count)")
        func run<S, D>(_ s: UnsafePointer<S>, _ d: UnsafeMutablePointer<D>, _ f: (S) -> D) {
            for i in 0..<src.count { d[i] = f(s[i]) }
        }
        switch (src.dtype, dst.dtype) {
        case (.float32, .float64): run(src.pointer(Float.self), dst.pointer(Double.self)) { Double($0) }
        case (.float64, .float32): run(src.pointer(Double.self), dst.pointer(Float.self)) { Float($0) }
        case (.int64, .float32): run(src.pointer(Int64.self), dst.pointer(Float.self)) { Float($0) }
        case (.int64, .float64): run(src.pointer(Int64.self), dst.pointer(Double.self)) { Double($0) }
        case (.float32, .int64): run(src.pointer(Float.self), dst.pointer(Int64.self)) { Int64($0) }
        case (.float64, .int64): run(src.pointer(Double.self), dst.pointer(Int64.self)) { Int64($0) }
        // bfloat16 to and from everything through float32 (exact from bfloat16; rounded to
        // nearest, ties to even, into it), as PyTorch converts.
        case (.bfloat16, .float32): BFloat16.widen(src.pointer(UInt16.self), into: dst.pointer(Float.self), count: src.count)
        case (.bfloat16, .float64): run(src.pointer(UInt16.self), dst.pointer(Double.self)) { Double(BFloat16.float(bits: $0)) }
        case (.bfloat16, .int64): run(src.pointer(UInt16.self), dst.pointer(Int64.self)) { Int64(BFloat16.float(bits: $0)) }
        case (.float32, .bfloat16): BFloat16.round(src.pointer(Float.self), into: dst.pointer(UInt16.self), count: src.count)
        case (.float64, .bfloat16): run(src.pointer(Double.self), dst.pointer(UInt16.self)) { BFloat16.bits(Float($0)) }
        case (.int64, .bfloat16): run(src.pointer(Int64.self), dst.pointer(UInt16.self)) { BFloat16.bits(Float($0)) }
        default: dst.dataPointer.copyMemory(from: src.dataPointer, byteCount: src.count * src.dtype.byteSize)
        }
    }
}

