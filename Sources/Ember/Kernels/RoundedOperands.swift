import CEmberProducts

/// One operand of a product: its values and, under bfloat16 autocast with bfloat16 units, the
/// same values already rounded to bfloat16 at the same offsets (`roundedForProducts`). An
/// operand that several products use (an activation in forward and in the weight's gradient, a
/// gradient in both of backward's products, attention's Q, K, V and P) is then rounded once
/// instead of at each product.
struct ProductOperand<T: FloatElement> {
    let values: UnsafePointer<T>
    let rounded: UnsafePointer<UInt16>?

    init(_ values: UnsafePointer<T>, rounded: UnsafePointer<UInt16>? = nil) {
        (self.values, self.rounded) = (values, rounded)
    }

    /// `values` with the rounded copy of a tensor that holds them (nil leaves it out); the
    /// caller keeps that tensor alive while the operand is used.
    init(_ values: UnsafeMutablePointer<T>, rounded: Tensor?) {
        self.init(UnsafePointer(values), rounded: rounded.map { UnsafePointer($0.bfloat16Pointer()) })
    }

    static func + (operand: ProductOperand, offset: Int) -> ProductOperand {
        ProductOperand(operand.values + offset, rounded: operand.rounded.map { $0 + offset })
    }
}

extension Kernels {
    /// Whether products of `T` run in bfloat16 on this thread now (float32 under bf16 autocast,
    /// with bfloat16 units): then operands used by several products are worth rounding once.
    static func roundsOperands<T: FloatElement>(_ type: T.Type) -> Bool {
        T.self == Float.self && ember_products_bf16() != 0 && ember_bf16_available() != 0
    }

    /// A contiguous float32 tensor rounded to bfloat16 as the bf16 products round their operands
    /// (the CPU's conversion), when the calling thread's products run in bfloat16 on bfloat16
    /// units; nil otherwise (float64, float32 products, or emulation).
    /// A parameter's copy comes from the thread's `ParameterRoundings` when one is in use.
    static func roundedForProducts(_ t: Tensor) -> Tensor? {
        guard t.dtype == .float32, roundsOperands(Float.self) else { return nil }
        if t.requiresGrad && t.isLeaf, let kept = ParameterRoundings.current { return kept.rounded(t, roundingNow) }
        return roundingNow(t)
    }

    private static func roundingNow(_ t: Tensor) -> Tensor? {
        guard let out = bfloat16Buffer(t.shape) else { return nil }
        roundForProducts(t.pointer(Float.self), count: t.count, into: out.bfloat16Pointer())
        return out
    }

    /// An uninitialised bfloat16 tensor of `shape` for a kernel to round values of `T` into
    /// (`roundForProducts`) and keep for several products, when the calling thread's products of
    /// `T` run in bfloat16; nil otherwise.
    static func bfloat16Buffer<T: FloatElement>(_ shape: [Int], for type: T.Type = Float.self) -> Tensor? {
        guard shape.reduce(1, *) > 0, roundsOperands(T.self) else { return nil }
        return Tensor(uninitializedShape: shape, dtype: .bfloat16)
    }

    /// `count` float32 values rounded to bfloat16 as the products round them, into `out`.
    static func roundForProducts<T: FloatElement>(_ values: UnsafePointer<T>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        ember_round_bf16(UnsafeRawPointer(values).assumingMemoryBound(to: Float.self), 1, count, count, out)
    }

    /// Values rounded for bf16 products on the calling thread so far (tests count them).
    static var roundedValues: Int { ember_bf16_rounded() }

    /// `C = alpha·op(A)·op(B) + beta·C` as the raw-pointer `gemm`, multiplying the operands'
    /// bfloat16 copies where they have one and the products run in bfloat16 (the other operand is
    /// rounded on the way, as always).
    static func gemm<T: FloatElement>(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, alpha: T = 1,
                                      _ a: ProductOperand<T>, lda: Int, _ b: ProductOperand<T>, ldb: Int,
                                      beta: T, _ c: UnsafeMutablePointer<T>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if T.self == Float.self, a.rounded != nil || b.rounded != nil, ember_products_bf16() != 0,
           KernelProfile.countingProduct(flops: 2 * m * n * k, {
               ember_gemm_bf16(transA ? 1 : 0, transB ? 1 : 0, m, n, k, Float(alpha), a.rounded.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(a.values),
                               a.rounded == nil ? 0 : 1, lda, b.rounded.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(b.values),
                               b.rounded == nil ? 0 : 1, ldb, Float(beta), UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc) == 0
           }) {
            return
        }
        gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a.values, lda: lda, b.values, ldb: ldb, beta: beta, c, ldc: ldc)
    }
}

extension Tensor {
    /// A bfloat16 tensor's storage from element `offset` on, for kernels that round into it or
    /// multiply from it.
    func bfloat16Pointer(_ offset: Int = 0) -> UnsafeMutablePointer<UInt16> { pointer(UInt16.self) + offset }
}
