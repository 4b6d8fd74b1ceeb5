import CBLAS
import CEmberProducts
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension Kernels {
    /// `C[b] = op(A[b]) · op(B[b])` for `batch` matrices stored back to back (a stride of 0 reuses
    /// one matrix for every batch). Transposes are flags of the product, never copies.
    /// `roundedA`, `roundedB`: the operands already rounded to bfloat16 (`roundedForProducts`),
    /// used when the products run in bfloat16, so an operand several products share is rounded once.
    static func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, batch: Int, m: Int, n: Int, k: Int, transA: Bool, transB: Bool,
                     strideA: Int, strideB: Int, alpha: Double = 1, roundedA: Tensor? = nil, roundedB: Tensor? = nil) {
        if batch == 1, m == 1, !transA, alpha == 1, oneRowWithPackedWeight(a, roundedA, b, into: c, n: n, k: k, transB: transB) { return }
        func run<T: FloatElement>(_ type: T.Type) {
            let pa = ProductOperand(a.pointer(T.self), rounded: roundedA), pb = ProductOperand(b.pointer(T.self), rounded: roundedB)
            let pc = c.pointer(T.self)
            for i in 0..<batch {
                gemm(transA, transB, m: m, n: n, k: k, alpha: T(alpha), pa + i * strideA, lda: transA ? m : k,
                     pb + i * strideB, ldb: transB ? k : n, beta: 0, pc + i * m * n, ldc: n)
            }
        }
        switch c.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        case .int64, .bfloat16: stop(c.dtype.refusal("matmul"))
        }
    }

    /// `c = a · op(b)` for one row `a` and a parameter `b` that the thread's `ParameterRoundings`
    /// keeps packed (generation under bf16 autocast), with `a`'s rounded copy when the caller
    /// made one; false when that does not apply.
    private static func oneRowWithPackedWeight(_ a: Tensor, _ roundedA: Tensor?, _ b: Tensor, into c: Tensor, n: Int, k: Int, transB: Bool) -> Bool {
        guard c.dtype == .float32, a.dtype == .float32, b.requiresGrad, b.isLeaf, let kept = ParameterRoundings.current,
              roundsOperands(Float.self), let packed = kept.packedForOneRow(b, n: n, k: k, transposed: transB) else { return false }
        return KernelProfile.countingProduct(flops: 2 * n * k) {
            let operand = roundedA.map { UnsafeRawPointer($0.bfloat16Pointer()) } ?? UnsafeRawPointer(a.pointer(Float.self))
            return ember_gemm_packed_bf16(packed, operand, roundedA == nil ? 0 : 1, c.pointer(Float.self)) == 0
        }
    }

    /// Row-major `C = alpha·op(A)·op(B) + beta·C` on raw pointers with explicit leading
    /// dimensions, so kernels can multiply sub-blocks of larger buffers in place. Every matrix
    /// product of Ember comes here: float32 runs on oneDNN (kernels picked from the CPU's
    /// features), float64 on OpenBLAS; `ProductEngine` says which runs here.
    static func gemm<T: FloatElement>(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, alpha: T = 1,
                                      _ a: UnsafePointer<T>, lda: Int, _ b: UnsafePointer<T>, ldb: Int,
                                      beta: T, _ c: UnsafeMutablePointer<T>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        KernelProfile.countingProduct(flops: 2 * m * n * k) {
            if T.self == Float.self, ember_products_bf16() != 0,
               ember_sgemm_bf16(transA ? 1 : 0, transB ? 1 : 0, m, n, k, Float(alpha), floats(a), lda, floats(b), ldb,
                                Float(beta), floats(c), ldc) == 0 {
                return
            }
            if T.self == Float.self, ProductEngine.float32 == .onednn,
               ember_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, Float(alpha), floats(a), lda, floats(b), ldb,
                           Float(beta), floats(c), ldc) == 0 {
                return
            }
            blas(transA, transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb, beta: beta, c, ldc: ldc)
        }
    }

    private static func blas<T: FloatElement>(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, alpha: T,
                                              _ a: UnsafePointer<T>, lda: Int, _ b: UnsafePointer<T>, ldb: Int,
                                              beta: T, _ c: UnsafeMutablePointer<T>, ldc: Int) {
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        let (M, N, K) = (Int32(m), Int32(n), Int32(k))
        if T.self == Float.self {
            cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, Float(alpha), UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), Int32(lda),
                        UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), Int32(ldb), Float(beta),
                        UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), Int32(ldc))
        } else {
            cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, Double(alpha), UnsafeRawPointer(a).assumingMemoryBound(to: Double.self), Int32(lda),
                        UnsafeRawPointer(b).assumingMemoryBound(to: Double.self), Int32(ldb), Double(beta),
                        UnsafeMutableRawPointer(c).assumingMemoryBound(to: Double.self), Int32(ldc))
        }
    }
}

/// Sets the number of threads every library's matrix products use (OpenBLAS, oneDNN's OpenMP).
/// Process-wide: ranks running as threads share it, so set it once before they start. Until it
/// is set, both use OpenBLAS's count (`OPENBLAS_NUM_THREADS`, `OMP_NUM_THREADS`, else the cores).
public func setNumThreads(_ n: Int) {
    openblas_set_num_threads(Int32(max(1, n)))
    ember_products_set_threads(Int32(max(1, n)))
}

/// Lowers the thread count to `n` unless the program set one (`setNumThreads`): ranks running as
/// threads split the cores, as torchrun gives each of its processes one thread unless told.
@_spi(Checks) public func suggestNumThreads(_ n: Int) {
    if ember_products_suggest_threads(Int32(max(1, n))) != 0 { openblas_set_num_threads(Int32(max(1, n))) }
}

/// Threads matrix products use: as set, and one inside a kernel's team (`Kernels.team`), whose
/// members each multiply on one thread.
public var numThreads: Int { Int(ember_wanted_threads()) }

/// The CPU kernel family OpenBLAS chose at load time ("Haswell", "SkylakeX", "Cooperlake", ...);
/// `OPENBLAS_CORETYPE` in the environment overrides its detection.
public var blasKernel: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

/// Opt-in timing of matrix products, so benchmarks can report how much of a step they take and
/// how fast they run, and under bf16 how much the rounding of their operands takes (counted
/// apart: a product's time is its multiplication). It times the thread that enabled it, where
/// a rank's step runs: threads sharing the step's work (attention's heads) would count the same
/// wall time again (`trainer bench` turns it on for its timed steps only).
public enum KernelProfile {
    /// (The switch and its thread are the rounding timer's, so both time the same thread.)
    public static var isEnabled: Bool {
        get { ember_bf16_timing_on() != 0 }
        set { ember_bf16_set_timing(newValue ? 1 : 0) }
    }
    private static var onProfiledThread: Bool { ember_bf16_timing_here() != 0 }
    static let productNanoseconds = Atomic<Int>(0)
    static let productFlops = Atomic<Int>(0)

    /// Seconds spent in matrix products since the last reset (while enabled).
    public static var productSeconds: Double { Double(productNanoseconds.load(ordering: .relaxed)) / 1e9 }
    /// Their floating-point operations (2·m·n·k each) since the last reset.
    public static var productOperations: Double { Double(productFlops.load(ordering: .relaxed)) }
    /// Seconds spent rounding products' operands to bfloat16 since the last reset (while enabled).
    public static var roundingSeconds: Double { Double(ember_bf16_rounding_ns()) / 1e9 }
    public static func reset() {
        productNanoseconds.store(0, ordering: .relaxed)
        productFlops.store(0, ordering: .relaxed)
        ember_bf16_reset_timing()
    }

    static func now() -> Int { Int(monotonicNanoseconds()) }

    /// Runs a matrix product of `flops` operations, counted while enabled.
    @inline(__always)
    static func countingProduct<R>(flops: Int, _ body: () -> R) -> R {
        countingProduct { (body(), flops) }
    }

    /// Runs a matrix product that tells the operations it did (a kernel that skips work),
    /// counted while enabled; the bf16 rounding it does is not its time.
    @inline(__always)
    static func countingProduct<R>(_ body: () -> (result: R, flops: Int)) -> R {
        guard onProfiledThread else { return body().result }
        let (started, rounding) = (now(), ember_bf16_thread_rounding_ns())
        let done = body()
        productNanoseconds.add(now() - started - (ember_bf16_thread_rounding_ns() - rounding), ordering: .relaxed)
        productFlops.add(done.flops, ordering: .relaxed)
        return done.result
    }
}

/// The monotonic clock in nanoseconds: what profiles and timelines measure with.
public func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// A float32 pointer view of a generic element pointer, for C kernels (callers check `T`).
func floats<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> { UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
func floats<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Float> { UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) }
