import XCTest
@testable import Ember

/// The float32 product engine (oneDNN) and OpenBLAS, each against the exact product within the
/// rounding bound, over the transposes, sub-blocks, alpha and beta that Ember's kernels use.
final class ProductEngineTests: XCTestCase {
    let engine = ProductEngine.float32

    override func tearDown() { ProductEngine.float32 = engine }

    /// `C = alpha·op(A)·op(B) + beta·C` on sub-blocks of larger buffers (leading dimensions
    /// past the block), through `Kernels.gemm`.
    func product(_ library: ProductEngine.Library, m: Int, n: Int, k: Int, transA: Bool, transB: Bool,
                 alpha: Float, beta: Float, seed: UInt64) -> (c: Tensor, bound: ProductBound) {
        ProductEngine.float32 = library
        let g = Generator(seed: seed)
        let (lda, ldb, ldc) = ((transA ? m : k) + 3, (transB ? k : n) + 5, n + 2)
        let a = Tensor.randn([transA ? k : m, lda], generator: g), b = Tensor.randn([transB ? n : k, ldb], generator: g)
        let c0 = Tensor.randn([m, ldc], generator: g), c = c0.clone()
        withExtendedLifetime((a, b)) {
            Kernels.gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, UnsafePointer(a.pointer(Float.self)), lda: lda,
                         UnsafePointer(b.pointer(Float.self)), ldb: ldb, beta: beta, c.pointer(Float.self), ldc: ldc)
        }
        let blockA = a.narrow(dim: 1, start: 0, length: transA ? m : k), blockB = b.narrow(dim: 1, start: 0, length: transB ? k : n)
        // alpha·AB + beta·C0 as one product: [A | C0] · [alpha·B ; beta·I] keeps the bound honest.
        let exact = ProductBound(blockA, blockB, transposeA: transA, transposeB: transB, k: k)
        let initial = c0.narrow(dim: 1, start: 0, length: n).to(.float64)
        let expected = ProductBound(exact: exact.exact * Double(alpha) + initial * Double(beta),
                                    bound: exact.bound * Double(abs(alpha)) + initial.abs() * (Double(abs(beta)) * 0x1p-23))
        return (c.narrow(dim: 1, start: 0, length: n), expected)
    }

    func testEveryLibraryIsWithinTheRoundingBoundOfTheExactProduct() throws {
        var libraries: [ProductEngine.Library] = [.openblas]
        if ProductEngine.float32 == .onednn { libraries.append(.onednn) }
        let shapes = [(1, 1, 1), (7, 5, 3), (9, 64, 40), (32, 1024, 256), (64, 64, 32), (65, 33, 300), (128, 384, 128)]
        var seed: UInt64 = 1
        for library in libraries {
            for (m, n, k) in shapes {
                for (transA, transB) in [(false, false), (false, true), (true, false), (true, true)] {
                    for (alpha, beta): (Float, Float) in [(1, 0), (0.125, 1), (-2, 0.5)] {
                        seed += 1
                        let r = product(library, m: m, n: n, k: k, transA: transA, transB: transB, alpha: alpha, beta: beta, seed: seed)
                        assertWithinProductBound(r.c, r.bound, "\(library) m \(m) n \(n) k \(k) tA \(transA) tB \(transB) alpha \(alpha) beta \(beta)")
                    }
                }
            }
        }
        // launch/test shows which kernel families these tests compared.
        print("kernels compared: float32 \(libraries.map(\.rawValue).joined(separator: ", ")) (\(ProductEngine.description), last oneDNN kernel \(ProductEngine.lastKernel)); float64 \(ProductEngine.float64Description); CPU \(ProductEngine.cpuInstructions)")
    }

    func testAShapeIsPreparedOnceAndReused() throws {
        try XCTSkipIf(ProductEngine.float32 != .onednn, "oneDNN did not start here: products run on OpenBLAS")
        let a = Tensor.randn([17, 23]), b = Tensor.randn([23, 29])
        _ = a.matmul(b)
        let prepared = ProductEngine.preparedOnThisThread
        for _ in 0..<5 { _ = a.matmul(b) }
        XCTAssertEqual(ProductEngine.preparedOnThisThread, prepared)
        _ = a.matmul(Tensor.randn([23, 30]))
        XCTAssertEqual(ProductEngine.preparedOnThisThread, prepared + 1)
    }

    /// oneDNN fixes a product's thread count when it prepares it, so the count belongs to the
    /// shape: a large product under two threads and under one is prepared twice; a small one runs
    /// on one thread either way (sharing it costs more than it saves) and is prepared once.
    func testAProductIsPreparedForTheThreadsItRunsOn() throws {
        try XCTSkipIf(ProductEngine.float32 != .onednn, "oneDNN did not start here: products run on OpenBLAS")
        let saved = numThreads
        defer { setNumThreads(saved) }
        setNumThreads(2)
        let large = (Tensor.randn([128, 96]), Tensor.randn([96, 112])), small = (Tensor.randn([19, 23]), Tensor.randn([23, 31]))
        let reference = large.0.matmul(large.1)
        _ = small.0.matmul(small.1)
        let prepared = ProductEngine.preparedOnThisThread
        setNumThreads(1)
        let single = large.0.matmul(large.1)
        _ = small.0.matmul(small.1)
        XCTAssertEqual(ProductEngine.preparedOnThisThread, prepared + 1, "the large product again for one thread; the small one reused")
        XCTAssertTrue(single.allClose(reference, rtol: 1e-5, atol: 1e-5))
    }

    func testTheEngineNamesALibraryAndItsInstructions() {
        let parts = ProductEngine.description.split(separator: ":")
        XCTAssertEqual(parts.count, 2, ProductEngine.description)
        XCTAssertTrue(["onednn", "openblas"].contains(String(parts[0])), ProductEngine.description)
        if ProductEngine.float32 == .onednn {
            // oneDNN uses the best the CPU has for float32, unless DNNL_MAX_CPU_ISA caps it below.
            let env = ProcessInfo.processInfo.environment
            let cap = (env["DNNL_MAX_CPU_ISA"] ?? env["ONEDNN_MAX_CPU_ISA"])?.lowercased()
            if let cap, ProductEngine.float32Level(cap) < ProductEngine.float32Level(ProductEngine.cpuInstructions) {
                XCTAssertNotNil(ProductEngine.shortfall, "capped at \(cap) on \(ProductEngine.cpuInstructions)")
            } else {
                XCTAssertNil(ProductEngine.shortfall)
            }
        }
    }
}

extension ProductBound {
    init(exact: Tensor, bound: Tensor) {
        self.exact = exact
        self.bound = bound + 1e-30
    }
}
