import CBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension Kernels {
    /// `C[b] = op(A[b]) · op(B[b])` for `batch` matrices stored back to back (a stride of 0 reuses
    /// one matrix for every batch), through OpenBLAS. Transposes are BLAS flags, never copies.
    static func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, batch: Int, m: Int, n: Int, k: Int,
                     transA: Bool, transB: Bool, strideA: Int, strideB: Int) {
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        let lda = Int32(transA ? m : k), ldb = Int32(transB ? k : n), ldc = Int32(n)
        let (M, N, K) = (Int32(m), Int32(n), Int32(k))
        guard m > 0, n > 0 else { return }
        let started = KernelProfile.isEnabled ? KernelProfile.now() : 0
        defer { if KernelProfile.isEnabled { KernelProfile.blasNanoseconds.add(KernelProfile.now() - started, ordering: .relaxed) } }
        for i in 0..<batch {
            switch c.dtype {
            case .float32:
                cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1, a.pointer(Float.self) + i * strideA, lda,
                            b.pointer(Float.self) + i * strideB, ldb, 0, c.pointer(Float.self) + i * m * n, ldc)
            case .float64:
                cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, 1, a.pointer(Double.self) + i * strideA, lda,
                            b.pointer(Double.self) + i * strideB, ldb, 0, c.pointer(Double.self) + i * m * n, ldc)
            case .int64:
                preconditionFailure("matmul needs floating-point tensors")
            }
        }
    }
}

/// Sets the number of threads OpenBLAS uses for matrix products (per process).
public func setNumThreads(_ n: Int) {
    openblas_set_num_threads(Int32(max(1, n)))
}

/// Threads OpenBLAS uses for matrix products.
public var numThreads: Int { Int(openblas_get_num_threads()) }

/// Opt-in timing of matrix products, so benchmarks can report how much of a step is BLAS.
public enum KernelProfile {
    nonisolated(unsafe) public static var isEnabled = false
    static let blasNanoseconds = Atomic<Int>(0)

    /// Seconds spent in BLAS products since the last reset (while enabled).
    public static var blasSeconds: Double { Double(blasNanoseconds.load(ordering: .relaxed)) / 1e9 }
    public static func reset() { blasNanoseconds.store(0, ordering: .relaxed) }

    static func now() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1_000_000_000 + t.tv_nsec
    }
}
