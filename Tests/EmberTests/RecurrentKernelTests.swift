import XCTest
import CEmberSupport
@testable import Ember

/// The recurrent weight's packed per-step product (float32, AVX-512, widths that are multiples
/// of 32) against the exact product within rounding, and the layers that use it against their
/// float64 selves.
final class RecurrentKernelTests: XCTestCase {
    func testThePackedProductIsWithinTheRoundingBound() throws {
        try XCTSkipIf(ember_packed_product_available() == 0, "no AVX-512 here: the layers use BLAS")
        let g = Generator(seed: 4)
        for (m, n, k) in [(9, 64, 40), (32, 1024, 256), (3, 32, 1)] {
            for transposed in [true, false] {
                let w = Tensor.randn(transposed ? [n, k] : [k, n], generator: g), a = Tensor.randn([m, k], generator: g)
                let expected = ProductBound(a, w, transposeB: transposed, k: k)
                let out = Tensor.zeros([m, n])
                withExtendedLifetime((w, a)) {
                    let product = RecurrentProduct(UnsafePointer(w.pointer(Float.self)), m: m, n: n, k: k, transposed: transposed)
                    product(UnsafePointer(a.pointer(Float.self)), into: out.pointer(Float.self))
                    product.release()
                }
                assertWithinProductBound(out, expected, "packed avx512 m \(m) n \(n) k \(k) transposed \(transposed)")
            }
        }
    }

    /// Under bf16 autocast the weight is rounded and packed once by oneDNN: each step's product
    /// stays within bfloat16's bound of the exact one, the same whether A comes rounded or not.
    func testTheBfloat16PackedProductIsWithinItsBound() throws {
        guard Precision.bfloat16IsNative else { throw XCTSkip("no bfloat16 units here: the weight is packed for them only") }
        let g = Generator(seed: 5)
        for (m, n, k) in [(9, 64, 40), (32, 1024, 256), (3, 32, 1), (5, 48, 7)] {
            for transposed in [true, false] {
                let w = Tensor.randn(transposed ? [n, k] : [k, n], generator: g), a = Tensor.randn([m, k], generator: g)
                let (plain, prerounded) = (Tensor.zeros([m, n]), Tensor.zeros([m, n]))
                autocast(.bfloat16) {
                    let ra = Kernels.roundedForProducts(a)!
                    withExtendedLifetime((w, a, ra)) {
                        let product = RecurrentProduct(UnsafePointer(w.pointer(Float.self)), m: m, n: n, k: k, transposed: transposed)
                        // (Degenerate shapes may go to a oneDNN kernel without its own layout; the
                        // product then falls back to rounding at each call, as the test allows.)
                        if k >= 32 { XCTAssertTrue(product.packedForBFloat16, "m \(m) n \(n) k \(k): not packed") }
                        product(UnsafePointer(a.pointer(Float.self)), into: plain.pointer(Float.self))
                        product(UnsafePointer(a.pointer(Float.self)), roundedA: UnsafePointer(ra.pointer(UInt16.self)), into: prerounded.pointer(Float.self))
                        product.release()
                    }
                }
                let exact = ProductBound(a, w, transposeB: transposed, k: k)
                let abs = a.to(.float64).abs().matmul(w.to(.float64).abs(), transposeB: transposed)
                assertWithinProductBound(plain, ProductBound(exact: exact.exact, bound: exact.bound + abs * (2 * 0x1p-8 + 0x1p-16)),
                                         "bf16 packed m \(m) n \(n) k \(k) transposed \(transposed)")
                XCTAssertEqual(plain.scalars, prerounded.scalars)
            }
        }
    }

    /// Hidden 32 (LSTM gates 128, GRU 96: both products packed), a batch of 9 (a row past the
    /// kernel's blocks of 8), unequal lengths, both directions; and hidden 80, whose gate
    /// kernels run one interleaved block of 64 and a rest, forward in time and reversed.
    func testLayersOnThePackedPathMatchTheirFloat64Selves() throws {
        let lengths = [7, 3, 7, 1, 5, 6, 2, 7, 4]
        let x = Tensor.randn([9, 7, 5], generator: Generator(seed: 8))
        let layers: [(String, [Int]?, () -> Module)] = [
            ("lstm", lengths, { LSTM(inputSize: 5, hiddenSize: 32, batchFirst: true, bidirectional: true, generator: Generator(seed: 5)) }),
            ("gru", lengths, { GRU(inputSize: 5, hiddenSize: 32, batchFirst: true, bidirectional: true, generator: Generator(seed: 5)) }),
            ("lstm 80", nil, { LSTM(inputSize: 5, hiddenSize: 80, batchFirst: true, generator: Generator(seed: 5)) }),
            ("lstm 80 both ways", lengths, { LSTM(inputSize: 5, hiddenSize: 80, batchFirst: true, bidirectional: true, generator: Generator(seed: 5)) }),
        ]
        for (name, lengths, make) in layers {
            func run(_ dtype: DType) throws -> [Tensor] {
                let m = make().to(dtype)
                let input = x.to(dtype).requiresGrad_()
                let out: Tensor = (m as? LSTM).map { $0(input, lengths: lengths).output } ?? (m as! GRU)(input, lengths: lengths).output
                let w = Tensor.randn(out.shape, generator: Generator(seed: 9)).to(dtype)
                let grads = try grad(of: [(out * w).sum()], wrt: [input] + m.parameters())
                return [out] + grads.map { $0! }
            }
            for (single, double) in zip(try run(.float32), try run(.float64)) {
                XCTAssertTrue(single.to(.float64).allClose(double, rtol: 1e-4, atol: 1e-4), name)
            }
        }
    }
}
