import CEmberSupport

/// The part of an attention head's product that causal attention needs.
enum AttentionTriangle {
    /// All of it.
    case whole
    /// Only C's lower triangle, diagonal included (scores: a row attends to columns up to its
    /// own); what C holds above it is undefined.
    case lowerOutput
    /// Row `i` of C sums over `k ≤ i` only: op(A)'s other elements are zeros (weights times values).
    case kUpToRow
    /// Row `i` of C sums over `k ≥ i` only: op(A)'s other elements are zeros (transposed weights).
    case kFromRow

    var code: Int32 {
        switch self {
        case .whole: Int32(EMBER_TRIANGLE_NONE)
        case .lowerOutput: Int32(EMBER_TRIANGLE_OUTPUT_LOWER)
        case .kUpToRow: Int32(EMBER_TRIANGLE_K_UP_TO_ROW)
        case .kFromRow: Int32(EMBER_TRIANGLE_K_FROM_ROW)
        }
    }
}

extension Kernels {
    /// `c = op(a) · op(b)` for one attention head (`c` overwritten). Float32 operands without
    /// bfloat16 copies run on Ember's own AVX-512 kernel (AttentionProducts.c), which does only the
    /// `triangle`'s work: about half of causal attention's. Otherwise the general products compute
    /// all of `c`. `scratch` holds `k·n` values when `transB` (the transposed operand).
    static func attentionProduct<T: FloatElement>(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int,
                                                  _ a: ProductOperand<T>, lda: Int, _ b: ProductOperand<T>, ldb: Int,
                                                  _ c: UnsafeMutablePointer<T>, ldc: Int, triangle: AttentionTriangle,
                                                  scratch: UnsafeMutablePointer<T>) {
        guard T.self == Float.self, a.rounded == nil, b.rounded == nil, m > 0, n > 0, k > 0, ember_attention_product_available() != 0 else {
            return gemm(transA, transB, m: m, n: n, k: k, a, lda: lda, b, ldb: ldb, beta: 0, c, ldc: ldc)
        }
        KernelProfile.countingProduct {
            ((), 2 * ember_attention_product_f32(transA ? 1 : 0, transB ? 1 : 0, m, n, k, floats(a.values), lda, floats(b.values), ldb,
                                            floats(c), ldc, triangle.code, floats(scratch)))
        }
    }
}
