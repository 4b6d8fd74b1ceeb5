import CEmberProducts
import XCTest
@testable import Ember

/// bfloat16 autocast: float32 products of bfloat16-rounded operands with float32 accumulation,
/// within the rounding bound of an 8-bit mantissa, forward and backward; everything else float32.
final class PrecisionTests: XCTestCase {
    /// Rounding each operand to bfloat16 (8 significant bits) moves it by at most 2⁻⁸ relative,
    /// so a product term by at most 2·2⁻⁸ + 2⁻¹⁶; the float32 sum adds (k+2)·2⁻²⁴.
    func bfloat16Bound(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, k: Int) -> ProductBound {
        let exact = ProductBound(a, b, transposeA: transposeA, transposeB: transposeB, k: k)
        let abs = a.to(.float64).abs().matmul(b.to(.float64).abs(), transposeA: transposeA, transposeB: transposeB)
        return ProductBound(exact: exact.exact, bound: exact.bound + abs * (2 * 0x1p-8 + 0x1p-16))
    }

    func testProductsAreWithinTheBfloat16RoundingBoundOfTheExactProduct() {
        let g = Generator(seed: 11)
        var kernels: Set<String> = []
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (64, 64, 32), (32, 1024, 256), (65, 33, 300)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let a = Tensor.randn(ta ? [k, m] : [m, k], generator: g), b = Tensor.randn(tb ? [n, k] : [k, n], generator: g)
                let c = autocast(.bfloat16) { a.matmul(b, transposeA: ta, transposeB: tb) }
                kernels.insert(ProductEngine.lastKernel)
                assertWithinProductBound(c, bfloat16Bound(a, b, transposeA: ta, transposeB: tb, k: k), "bf16 m \(m) n \(n) k \(k) tA \(ta) tB \(tb)")
                // And not the float32 product: the operands really were rounded.
                if k >= 32 { XCTAssertNotEqual(c.scalars, a.matmul(b, transposeA: ta, transposeB: tb).scalars) }
            }
        }
        // launch/test shows which bf16 kernels these tests compared (AMX: oneDNN's "brg:avx512_core_amx").
        print("bf16 kernels compared: \(Precision.bfloat16Units ?? "emulated (no bfloat16 units)"), oneDNN kernels \(kernels.sorted().joined(separator: ", "))")
    }

    /// From 2^18 values the product threads share the rounding: the same bits as one thread,
    /// every value written, for one long run and for rows of a larger matrix.
    func testRoundingSharedByThreadsGivesOneThreadsBits() {
        let saved = numThreads
        defer { setNumThreads(saved) }
        let g = Generator(seed: 5)
        var values = (Tensor.randn([300_001], generator: g) * Tensor.randn([300_001], generator: g).exp() * 1e3).scalars.map { Float($0) }
        for (i, special) in [Float.nan, .infinity, -.infinity, 0x1p-130, -0.0, 1 + 0x1p-8, 1 + 0x1p-7 + 0x1p-8].enumerated() { values[i * 1000] = special }
        // `rows` rows of `cols` values `ld` apart (one long row when ld == cols).
        func rounded(threads: Int, rows: Int, cols: Int, ld: Int) -> [UInt16] {
            setNumThreads(threads)
            var out = [UInt16](repeating: 0xDEAD, count: rows * cols)
            values.withUnsafeBufferPointer { v in out.withUnsafeMutableBufferPointer { ember_round_bf16(v.baseAddress!, rows, cols, ld, $0.baseAddress!) } }
            return out
        }
        for (rows, cols, ld) in [(1, 300_001, 300_001), (700, 400, 428)] {
            let one = rounded(threads: 1, rows: rows, cols: cols, ld: ld), two = rounded(threads: 2, rows: rows, cols: cols, ld: ld)
            XCTAssertFalse(one.contains(0xDEAD), "\(rows)×\(cols): one thread left values unwritten")
            let differs = one.indices.first { one[$0] != two[$0] }
            XCTAssertNil(differs, "\(rows)×\(cols) every \(ld): two threads round value \(differs ?? 0) differently")
        }
    }

    func testOperandsThatAreBfloat16ValuesMultiplyExactly() {
        // Small integers and halves are bfloat16 values, and their sums are exact in float32.
        let a = Tensor((0..<48).map { Float($0 % 7) - 3 }, shape: [6, 8]), b = Tensor((0..<40).map { Float($0 % 5) * 0.5 }, shape: [8, 5])
        XCTAssertEqual(autocast(.bfloat16) { a.matmul(b) }.scalars, a.matmul(b).scalars)
    }

    func testTheScopeIsPerThreadNestsAndRestores() {
        XCTAssertEqual(Precision.current, .float32)
        autocast(.bfloat16) {
            XCTAssertEqual(Precision.current, .bfloat16)
            autocast(.float32) { XCTAssertEqual(Precision.current, .float32) }
            XCTAssertEqual(Precision.current, .bfloat16)
            let other = Thread { XCTAssertEqual(Precision.current, .float32) }
            other.start()
            while !other.isFinished { usleep(1000) }
        }
        XCTAssertEqual(Precision.current, .float32)
    }

    /// A linear layer's forward and backward in bfloat16 stay within bfloat16's precision of the
    /// The trainer measures the bf16 speed on rank 0 alone at start-up: drawing the operands from
    /// `Generator.default` would leave rank 0's stream ahead of the others'.
    func testMeasuringTheBfloat16SpeedDrawsNothingFromTheDefaultGenerator() {
        manualSeed(11)
        let expected = Tensor.randn([5]).scalars
        manualSeed(11)
        let speedup = ProductEngine.bfloat16Speedup(seconds: 0.02)
        XCTAssertEqual(Tensor.randn([5]).scalars, expected)
        if Precision.bfloat16IsNative {
            XCTAssertGreaterThan(speedup ?? 0, 0.1, "a measured bf16 speed against float32")
        } else {
            XCTAssertNil(speedup, "no bf16 speed without bfloat16 units")
        }
    }

    /// float32 ones, the gradients arrive as float32, and the same inputs give the same bits.
    func testLinearForwardAndBackwardStayCloseAndRepeatBitwise() throws {
        func run() throws -> [Float] {
            let layer = Linear(inFeatures: 64, outFeatures: 32, generator: Generator(seed: 3))
            let x = Tensor.randn([16, 64], generator: Generator(seed: 4)).requiresGrad_()
            let y = autocast(.bfloat16) { layer(x) }
            autocast(.bfloat16) { (y * y).sum().backward() }
            XCTAssertEqual(layer.weight.grad?.dtype, .float32)
            return y.scalars + x.grad!.scalars + layer.weight.grad!.scalars
        }
        let first = try run(), second = try run()
        XCTAssertEqual(first, second)
        let layer = Linear(inFeatures: 64, outFeatures: 32, generator: Generator(seed: 3))
        let x = Tensor.randn([16, 64], generator: Generator(seed: 4)).requiresGrad_()
        let y = layer(x)
        (y * y).sum().backward()
        let reference = y.scalars + x.grad!.scalars + layer.weight.grad!.scalars
        let scale = reference.map(Swift.abs).max()!
        let worst = zip(first, reference).map { Swift.abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 0.05 * scale, "bf16 differs from fp32 by \(worst) (scale \(scale))")
        XCTAssertGreaterThan(worst, 0, "bf16 gave the float32 bits: nothing was rounded")
    }

    /// Under bf16 autocast each operand of a product is rounded once: a matmul's forward and
    /// backward round the input, the weight and the incoming gradient once each (before, the input
    /// and the gradient were rounded again for each of backward's products), and the rounded
    /// copies give the bits of rounding at each product (a weight that is not a leaf, as before).
    func testEachOperandOfAProductIsRoundedOnce() throws {
        guard Precision.bfloat16IsNative else { throw XCTSkip("no bfloat16 units here: operands are rounded with them only") }
        let w = Tensor.randn([24, 40], generator: Generator(seed: 8))
        let x = Tensor.randn([10, 40], generator: Generator(seed: 9))
        func run(trained: Bool) -> (values: [Float], rounded: Int) {
            let weight = trained ? w.clone().requiresGrad_() : w.clone()
            let input = x.clone().requiresGrad_()
            let b = trained ? weight : weight.requiresGrad_().reshape([24, 40]) * 1
            let before = Kernels.roundedValues
            let y = autocast(.bfloat16) { input.matmul(b, transposeB: true) }
            autocast(.bfloat16) { (y * y).sum().backward() }
            return (y.scalars + input.grad!.scalars + weight.grad!.scalars, Kernels.roundedValues - before)
        }
        let (trained, copy) = (run(trained: true), run(trained: false))
        XCTAssertEqual(trained.values, copy.values)
        XCTAssertEqual(trained.rounded, 10 * 40 + 24 * 40 + 10 * 24, "x, W and dY once each")
        XCTAssertEqual(copy.rounded, trained.rounded)
        XCTAssertNil(Kernels.roundedForProducts(w), "outside autocast nothing is rounded")
    }

    /// While no parameter changes (`withParametersUnchanged`, what `trainer sample` runs its
    /// tokens in), each weight is rounded once for all the calls; the inputs at every call.
    func testUnchangedParametersAreRoundedOnceForAllCalls() throws {
        guard Precision.bfloat16IsNative else { throw XCTSkip("no bfloat16 units here: operands are rounded with them only") }
        let weight = Tensor.randn([24, 40], generator: Generator(seed: 10)).requiresGrad_()
        let x = Tensor.randn([3, 40], generator: Generator(seed: 11))
        func rounded(calls: Int, unchanged: Bool) -> Int {
            let before = Kernels.roundedValues
            autocast(.bfloat16) { noGrad {
                let run = { for _ in 0..<calls { _ = x.matmul(weight, transposeB: true) } }
                if unchanged { withParametersUnchanged(run) } else { run() }
            } }
            return Kernels.roundedValues - before
        }
        XCTAssertEqual(rounded(calls: 5, unchanged: false), 5 * (24 * 40 + 3 * 40))
        XCTAssertEqual(rounded(calls: 5, unchanged: true), 24 * 40 + 5 * 3 * 40)
    }

    /// The fused self-attention's six products share four rounded operands (Q, K, V in one
    /// block, the weights) and backward rounds its two gradients once each; the results stay
    /// within bfloat16's precision of float32's and are not float32's.
    func testPackedAttentionRoundsEachOperandOnceAndStaysClose() throws {
        guard Precision.bfloat16IsNative else { throw XCTSkip("no bfloat16 units here: operands are rounded with them only") }
        let (n, l, e, heads) = (2, 7, 16, 2)
        let qkv = Tensor.randn([n, l, 3 * e], generator: Generator(seed: 4))
        let weight = Tensor.randn([n, l, e], generator: Generator(seed: 5))
        func run(_ precision: Precision) -> (values: [Float], rounded: Int) {
            let x = qkv.clone().requiresGrad_()
            let before = Kernels.roundedValues
            let out = autocast(precision) { Tensor.packedSelfAttention(x, numHeads: heads, causal: true) }
            autocast(precision) { (out * weight).sum().backward() }
            return (out.scalars + x.grad!.scalars, Kernels.roundedValues - before)
        }
        let (bf16, fp32) = (run(.bfloat16), run(.float32))
        let scores = n * heads * l * l
        XCTAssertEqual(bf16.rounded, n * l * 3 * e + scores + n * l * e + scores, "QKV, P, dO and dS once each")
        XCTAssertEqual(fp32.rounded, 0)
        let scale = fp32.values.map(Swift.abs).max()!
        let worst = zip(bf16.values, fp32.values).map { Swift.abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 0x1p-6 * scale)
        XCTAssertGreaterThan(worst, 0, "bf16 gave the float32 bits: nothing was rounded")
    }
}

/// The recurrent layers under bf16: forward rounds the input and each step's state once, for its
/// product and backward's weight products; backward rounds each step's gate gradients once, for
/// the step's product and all three of the products after the loop.
final class RecurrentPrecisionTests: XCTestCase {
    func testAnLSTMRoundsEachOperandOnce() throws {
        guard Precision.bfloat16IsNative else { throw XCTSkip("no bfloat16 units here: operands are rounded with them only") }
        let (n, t, e, h) = (9, 7, 5, 32)
        let lstm = LSTM(inputSize: e, hiddenSize: h, batchFirst: true, generator: Generator(seed: 5))
        let x = Tensor.randn([n, t, e], generator: Generator(seed: 6)).requiresGrad_()
        let before = Kernels.roundedValues
        let out = autocast(.bfloat16) { lstm(x).output }
        autocast(.bfloat16) { out.sum().backward() }
        let (tn, gw) = (t * n, 4 * h)
        // Forward: x, every step's h, W_hh, W_ih. Backward: W_hh, every step's gate gradients, W_ih.
        XCTAssertEqual(Kernels.roundedValues - before, tn * e + tn * h + gw * h + gw * e + gw * h + tn * gw + gw * e)
    }

    /// Both directions, unequal lengths, LSTM and GRU (whose two gate gradients differ): bf16
    /// within bfloat16's precision of float32, for the output and every gradient.
    func testBidirectionalLayersWithLengthsStayClose() throws {
        let lengths = [7, 3, 7, 1, 5]
        let x = Tensor.randn([5, 7, 6], generator: Generator(seed: 7))
        let layers: [(String, () -> Module)] = [
            ("lstm", { LSTM(inputSize: 6, hiddenSize: 16, batchFirst: true, bidirectional: true, generator: Generator(seed: 5)) }),
            ("gru", { GRU(inputSize: 6, hiddenSize: 16, batchFirst: true, bidirectional: true, generator: Generator(seed: 5)) })]
        for (name, make) in layers {
            func run(_ precision: Precision) -> [Float] {
                let m = make(), input = x.clone().requiresGrad_()
                let out: Tensor = autocast(precision) {
                    (m as? LSTM).map { $0(input, lengths: lengths).output } ?? (m as! GRU)(input, lengths: lengths).output
                }
                autocast(precision) { (out * out).sum().backward() }
                return out.scalars + input.grad!.scalars + m.parameters().flatMap { $0.grad!.scalars }
            }
            let (bf16, fp32) = (run(.bfloat16), run(.float32))
            let scale = fp32.map(Swift.abs).max()!
            let worst = zip(bf16, fp32).map { Swift.abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 0x1p-5 * scale, name)
            if Precision.bfloat16IsNative { XCTAssertGreaterThan(worst, 0, "\(name): bf16 gave the float32 bits") }
        }
    }
}
