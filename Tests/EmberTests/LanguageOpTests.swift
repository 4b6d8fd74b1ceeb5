import XCTest
@testable import Ember

/// The ops of language models beyond the PyTorch fixtures (OpReferenceTests): sampling,
/// attention against its composed formula, dropout on attention weights, and their errors.
final class LanguageOpTests: XCTestCase {
    func testArangeOfACountIsInt64LikePyTorch() {
        let r = Tensor.arange(4)
        XCTAssertEqual(r.dtype, .int64)
        XCTAssertEqual(r.intScalars, [0, 1, 2, 3])
        XCTAssertEqual(Tensor.arange(3, dtype: .float32).scalars, [0, 1, 2])
    }

    func testCatIsConcat() {
        let a = Tensor([1, 2], shape: [1, 2]), b = Tensor([3, 4], shape: [1, 2])
        XCTAssertEqual(Tensor.cat([a, b], dim: 0).scalars, [1, 2, 3, 4])
    }

    func testMultinomialFollowsTheWeightsAndIsSeeded() {
        let w = Tensor([1, 0, 3], shape: [3])
        let draws = w.multinomial(4000, replacement: true, generator: Generator(seed: 1)).intScalars
        XCTAssertFalse(draws.contains(1), "a zero weight is never drawn")
        let share = Double(draws.filter { $0 == 2 }.count) / 4000
        XCTAssertEqual(share, 0.75, accuracy: 0.03)
        XCTAssertEqual(w.multinomial(10, replacement: true, generator: Generator(seed: 5)).intScalars,
                       w.multinomial(10, replacement: true, generator: Generator(seed: 5)).intScalars)
    }

    func testMultinomialWithoutReplacementDrawsEachIndexOnce() {
        let w = Tensor([0.1, 5, 1, 2, 0.5, 3], shape: [2, 3])
        let d = w.multinomial(3, generator: Generator(seed: 2))
        XCTAssertEqual(d.shape, [2, 3])
        for row in 0..<2 { XCTAssertEqual(Set(d.intScalars[(row * 3)..<(row * 3 + 3)]), [0, 1, 2]) }
    }

    /// The fused attention equals `softmax(q kᵀ / sqrt(E) + mask) v` built from ordinary ops.
    func testFusedAttentionMatchesTheComposedFormula() throws {
        let g = Generator(seed: 3)
        let q = Tensor.randn([2, 3, 6, 4], dtype: .float64, generator: g).requiresGrad_()
        let k = Tensor.randn([2, 3, 6, 4], dtype: .float64, generator: g).requiresGrad_()
        let v = Tensor.randn([2, 3, 6, 5], dtype: .float64, generator: g).requiresGrad_()
        let w = Tensor.randn([2, 3, 6, 5], dtype: .float64, generator: g)
        for causal in [false, true] {
            let fused = Tensor.scaledDotProductAttention(q, k, v, isCausal: causal)
            var scores = q.matmul(k.transpose(-2, -1)) / 2.0
            if causal { scores = scores.maskedFill(Tensor.ones([6, 6], dtype: .float64).triu(diagonal: 1), -.infinity) }
            let composed = scores.softmax(dim: -1).matmul(v)
            XCTAssertTrue(fused.allClose(composed, rtol: 1e-12, atol: 1e-12))
            let gf = try grad(of: [(fused * w).sum()], wrt: [q, k, v])
            let gc = try grad(of: [(composed * w).sum()], wrt: [q, k, v])
            for (a, b) in zip(gf, gc) { XCTAssertTrue(a!.allClose(b!, rtol: 1e-10, atol: 1e-12)) }
        }
    }

    /// Self-attention from the packed projection (MultiheadAttention's fast path) against the
    /// general path on the same weights: values and gradients, causal or not, float32 and
    /// float64; and float64 gradcheck and gradgradcheck of the packed op itself.
    func testPackedSelfAttentionMatchesTheGeneralPath() throws {
        for dtype in [DType.float32, .float64] {
            for causal in [false, true] {
                let mha = MultiheadAttention(embedDim: 12, numHeads: 3, batchFirst: true, generator: Generator(seed: 5)).to(dtype)
                let x = Tensor.randn([2, 7, 12], dtype: dtype, generator: Generator(seed: 6)).requiresGrad_()
                let w = Tensor.randn([2, 7, 12], dtype: dtype, generator: Generator(seed: 7))
                let packed = mha(x, x, x, needWeights: false, isCausal: causal).output
                // needWeights takes the general path (split, per-head copies, fused softmax).
                let general = mha(x, x, x, needWeights: true, isCausal: causal).output
                let tol = dtype == .float64 ? 1e-12 : 1e-5
                XCTAssertTrue(packed.allClose(general, rtol: tol, atol: tol), "\(dtype) causal \(causal)")
                let params = [x] + mha.parameters()
                let gp = try grad(of: [(packed * w).sum()], wrt: params)
                let gg = try grad(of: [(general * w).sum()], wrt: params)
                for (a, b) in zip(gp, gg) { XCTAssertTrue(a!.allClose(b!, rtol: tol * 10, atol: tol * 10), "\(dtype) causal \(causal)") }
            }
        }
        let qkv = Tensor.randn([2, 5, 18], dtype: .float64, generator: Generator(seed: 8)).requiresGrad_()
        for causal in [false, true] {
            XCTAssertTrue(try gradcheck({ Tensor.packedSelfAttention($0[0], numHeads: 3, causal: causal) }, inputs: [qkv]))
            XCTAssertTrue(try gradgradcheck({ Tensor.packedSelfAttention($0[0], numHeads: 3, causal: causal) }, inputs: [qkv]))
        }
    }

    func testAFullyMaskedRowAttendsToNothing() {
        let q = Tensor.randn([2, 3]), k = Tensor.randn([4, 3]), v = Tensor.randn([4, 2])
        let allowed = Tensor([1, 1, 0, 0, 0, 0, 0, 0], shape: [2, 4])
        let out = Tensor.scaledDotProductAttention(q, k, v, attnMask: .allowed(allowed))
        XCTAssertEqual(Array(out.scalars[2...]), [0, 0])
        XCTAssertTrue(out.scalars.allSatisfy { $0.isFinite })
    }

    func testAttentionDropoutKeepsTheExpectation() {
        let q = Tensor.zeros([1, 1, 8]), k = Tensor.zeros([1, 400, 8]), v = Tensor.ones([1, 400, 1])
        // Uniform weights 1/400; dropping half and scaling by 2 keeps the mean output near 1.
        let out = Tensor.scaledDotProductAttention(q, k, v, dropoutP: 0.5, generator: Generator(seed: 4))
        XCTAssertEqual(Double(out.item()), 1, accuracy: 0.15)
        XCTAssertNotEqual(out.item(), 1)
    }
}

