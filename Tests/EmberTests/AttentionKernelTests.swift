import XCTest
import CEmberSupport
@testable import Ember

/// Attention's own kernels: the per-head products (AttentionProducts.c) and the causal softmax
/// gradient, which read only what causal attention needs.
final class AttentionKernelTests: XCTestCase {
    /// Every layout and triangle, on whole tiles and ragged edges: within float32's rounding
    /// bound of the exact product where the triangle asks for it, and nothing written past `n`.
    func testEveryLayoutAndTriangleIsWithinTheRoundingBound() throws {
        try XCTSkipIf(ember_attention_product_available() == 0, "no AVX-512 here: attention uses the general products")
        let g = Generator(seed: 11)
        let triangles: [AttentionTriangle] = [.whole, .lowerOutput, .kUpToRow, .kFromRow]
        for (m, n, k) in [(64, 64, 32), (64, 32, 64), (65, 70, 31), (7, 5, 3), (17, 33, 9), (1, 1, 1), (40, 48, 40)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    for triangle in triangles where triangle != .lowerOutput || m == n {
                        let what = "m \(m) n \(n) k \(k) transA \(transA) transB \(transB) \(triangle)"
                        let a = zeroedOutside(triangle, Tensor.randn([m, k], generator: g))
                        let b = Tensor.randn([k, n], generator: g)
                        let (opA, opB) = (transA ? a.t() : a, transB ? b.t() : b)
                        let c = product(opA, opB, transA, transB, m: m, n: n, k: k, triangle: triangle)
                        XCTAssertTrue(c.padding.allSatisfy { $0 == 7 }, "wrote past n: \(what)")
                        let expected = ProductBound(a, b, k: k)
                        let mask = triangle == .lowerOutput ? Tensor.ones([m, n]).tril() : Tensor.ones([m, n])
                        assertWithinProductBound(c.values * mask, ProductBound(exact: expected.exact * mask.to(.float64), bound: expected.bound), what)
                    }
                }
            }
        }
    }

    /// op(A) with the elements a triangle promises are zero set to zero.
    private func zeroedOutside(_ triangle: AttentionTriangle, _ a: Tensor) -> Tensor {
        switch triangle {
        case .kUpToRow: a.tril()
        case .kFromRow: a.triu()
        case .whole, .lowerOutput: a
        }
    }

    /// `attentionProduct` of operands stored as `transA`/`transB` say, into rows of `n + 2` whose
    /// two extra columns start at 7.
    private func product(_ a: Tensor, _ b: Tensor, _ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int,
                         triangle: AttentionTriangle) -> (values: Tensor, padding: [Float]) {
        let ldc = n + 2, c = Tensor.full([m, ldc], 7), scratch = Tensor.zeros([k * n])
        Kernels.attentionProduct(transA, transB, m: m, n: n, k: k, ProductOperand(a.pointer(Float.self)), lda: transA ? m : k,
                                 ProductOperand(b.pointer(Float.self)), ldb: transB ? k : n, c.pointer(Float.self), ldc: ldc,
                                 triangle: triangle, scratch: scratch.pointer(Float.self))
        let rows = c.scalars.chunked(ldc)
        return (Tensor(rows.flatMap { $0.prefix(n) }, shape: [m, n]), rows.flatMap { $0.suffix(2) })
    }

    /// Causal softmax reads only the columns each row attends to: huge scores or NaNs in the
    /// others (the products leave anything there) change no bit of the weights.
    func testCausalSoftmaxIgnoresTheScoresItHides() {
        for cols in [37, 64, 5] {
            let clean = Tensor.randn([2, cols, cols], generator: Generator(seed: 17))
            let lower = Tensor.ones([cols, cols]).tril().scalars
            for poison in [Float.nan, 1e30] {
                let scores = Tensor(clean.scalars.enumerated().map { lower[$0.offset % (cols * cols)] == 1 ? $0.element : poison }, shape: [2, cols, cols])
                let expected = clean.attentionSoftmax(scale: 0.3, mask: nil, causal: true)
                XCTAssertEqual(scores.attentionSoftmax(scale: 0.3, mask: nil, causal: true).scalars, expected.scalars, "cols \(cols) \(poison)")
            }
        }
    }

    /// The causal gradient reads only the columns each row attends to: NaNs in the others (what
    /// the products leave there) change nothing, and those columns get zeros; float32 and
    /// float64 agree.
    func testTheCausalSoftmaxGradientIgnoresWhatRowsDoNotAttendTo() {
        let (rows, cols) = (37, 37)
        let p = Tensor.randn([1, rows, cols], dtype: .float64, generator: Generator(seed: 12))
            .attentionSoftmax(scale: 0.5, mask: nil, causal: true).reshape([rows, cols])
        let g = Tensor.randn([rows, cols], dtype: .float64, generator: Generator(seed: 13))
        let poisoned = Tensor(zip(g.doubleScalars, Tensor.ones([rows, cols]).tril().doubleScalars).map { $1 == 1 ? $0 : .nan },
                              shape: [rows, cols], dtype: .float64)
        let expected = Kernels.attentionSoftmaxBackward(g * Tensor.ones([rows, cols], dtype: .float64).tril(), p, cols: cols, scale: 0.5)
        for dtype in [DType.float64, .float32] {
            let (gp, pp) = (poisoned.to(dtype), p.to(dtype))
            let out = Tensor.zeros([rows, cols], dtype: dtype)
            func run<T: FloatElement>(_ type: T.Type) {
                Kernels.attentionSoftmaxBackward(gp.pointer(T.self), pp.pointer(T.self), into: out.pointer(T.self), rows: rows, cols: cols,
                                                 scale: 0.5, causalRows: rows)
            }
            if dtype == .float32 { run(Float.self) } else { run(Double.self) }
            XCTAssertTrue(out.to(.float64).allClose(expected, rtol: 1e-5, atol: 1e-6), "\(dtype)")
            XCTAssertEqual(out.to(.float64).triu(diagonal: 1).abs().sum().doubleItem(), 0, "\(dtype)")
        }
    }

    /// Heads the size of the gpt preset's (width 32, 64 positions) and ragged ones (40): the
    /// packed path with its own kernels gives the general path's outputs and gradients.
    func testPackedAttentionOfModelSizedHeadsMatchesTheGeneralPath() throws {
        for (length, causal) in [(64, true), (40, true), (40, false)] {
            let mha = MultiheadAttention(embedDim: 64, numHeads: 2, batchFirst: true, generator: Generator(seed: 14))
            let x = Tensor.randn([2, length, 64], generator: Generator(seed: 15)).requiresGrad_()
            let w = Tensor.randn([2, length, 64], generator: Generator(seed: 16))
            let packed = mha(x, x, x, needWeights: false, isCausal: causal).output
            let general = mha(x, x, x, needWeights: true, isCausal: causal).output
            XCTAssertTrue(packed.allClose(general, rtol: 1e-5, atol: 1e-5), "length \(length) causal \(causal)")
            let params = [x] + mha.parameters()
            let gp = try grad(of: [(packed * w).sum()], wrt: params), gg = try grad(of: [(general * w).sum()], wrt: params)
            for (a, b) in zip(gp, gg) { XCTAssertTrue(a!.allClose(b!, rtol: 1e-4, atol: 1e-4), "length \(length) causal \(causal)") }
        }
    }
}

private extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
