import CBLAS

extension Kernels {
    /// `C[b] = op(A[b]) · op(B[b])` for `batch` matrices stored back to back (a stride of 0 reuses
    /// one matrix for every batch), through OpenBLAS. Transposes are BLAS flags, never copies.
    static func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, batch: Int, m: Int, n: Int, k: Int,
                     transA: Bool, transB: Bool, strideA: Int, strideB: Int) {
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        let lda = Int32(transA ? m : k), ldb = Int32(transB ? k : n), ldc = Int32(n)
        let (M, N, K) = (Int32(m), Int32(n), Int32(k))
        guard m > 0, n > 0 else { return }
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
