import XCTest
@testable import Ember

/// The chunked convolution kernel against the composite definition (im2col, matrix product,
/// col2im as separate differentiable ops), with batches split into chunks of every size.
final class ConvolutionKernelTests: XCTestCase {
    struct Case {
        let batch: Int, channels: Int, size: (Int, Int), outChannels: Int, kernel: (Int, Int)
        var stride = (1, 1), padding = Padding.valid, dilation = (1, 1), groups = 1
    }

    let cases = [
        Case(batch: 5, channels: 1, size: (12, 12), outChannels: 3, kernel: (5, 5), padding: .symmetric(2)),
        Case(batch: 4, channels: 4, size: (9, 11), outChannels: 6, kernel: (3, 3), stride: (2, 2), padding: .symmetric(1), groups: 2),
        Case(batch: 3, channels: 2, size: (10, 10), outChannels: 2, kernel: (3, 2), stride: (1, 2), dilation: (2, 1)),
        Case(batch: 7, channels: 3, size: (6, 6), outChannels: 3, kernel: (4, 4), padding: .same, groups: 3),
        // Dense (every window inside the image): unfolded by plain row copies.
        Case(batch: 3, channels: 2, size: (7, 9), outChannels: 4, kernel: (3, 2)),
    ]

    let before = (threads: numThreads, budget: ConvPlan.columnBudget, work: ConvPlan.parallelWork)

    override func setUp() {
        ConvPlan.parallelWork = 0  // spread even these small layers when given threads
    }

    override func tearDown() {
        ConvPlan.columnBudget = before.budget
        ConvPlan.parallelWork = before.work
        setNumThreads(before.threads)
    }

    func makeInputs(_ c: Case, seed: UInt64) -> (x: Tensor, w: Tensor, b: Tensor) {
        let g = Generator(seed: seed)
        return (Tensor.randn([c.batch, c.channels, c.size.0, c.size.1], dtype: .float64, generator: g).requiresGrad_(),
                Tensor.randn([c.outChannels, c.channels / c.groups, c.kernel.0, c.kernel.1], dtype: .float64, generator: g).requiresGrad_(),
                Tensor.randn([c.outChannels], dtype: .float64, generator: g).requiresGrad_())
    }

    func convolve(_ c: Case, _ x: Tensor, _ w: Tensor, _ b: Tensor) -> Tensor {
        conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups)
    }

    func geometry(_ c: Case) -> ConvGeometry {
        let pads = c.padding.amounts(kernel: c.kernel, dilation: c.dilation)
        return ConvGeometry(channels: c.channels, height: c.size.0, width: c.size.1, kernel: c.kernel, stride: c.stride,
                            padBefore: pads.before, padAfter: pads.after, dilation: c.dilation)
    }

    /// The definition, op by op.
    func composite(_ c: Case, _ x: Tensor, _ w: Tensor, _ b: Tensor) -> Tensor {
        let g = geometry(c)
        let cols = x.im2col(g).reshape([c.groups, g.patchSize / c.groups, -1])
        let out = w.reshape([c.groups, c.outChannels / c.groups, -1]).matmul(cols)
            .reshape([c.outChannels, c.batch, g.outHeight, g.outWidth]).permute([1, 0, 2, 3])
        return out + b.reshape([1, c.outChannels, 1, 1])
    }

    func assertClose(_ a: Tensor?, _ b: Tensor?, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let a, let b else { return XCTFail("\(what): missing gradient", file: file, line: line) }
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        if let m = firstMismatch(a.doubleScalars, b.doubleScalars, rtol: 1e-10, atol: 1e-10) {
            XCTFail("\(what): element \(m.index) is \(m.got), expected \(m.want)", file: file, line: line)
        }
    }

    func testEveryChunkSizeMatchesTheComposite() throws {
        for (i, c) in cases.enumerated() {
            let (x, w, b) = makeInputs(c, seed: UInt64(i))
            let want = composite(c, x, w, b)
            let seed = Tensor.randn(want.shape, dtype: .float64, generator: Generator(seed: 99))
            let wantGrads = try grad(of: [want], wrt: [x, w, b], gradOutputs: [seed])
            let g = geometry(c), sampleBytes = g.patchSize * g.outHeight * g.outWidth * 8
            // Whole batch in one chunk, one sample per chunk, and two per chunk with a remainder;
            // chunks in sequence (one thread) and spread over three workers.
            for (budget, threads) in [1 << 30, 1, 2 * sampleBytes].flatMap({ b in [1, 3].map { (b, $0) } }) {
                ConvPlan.columnBudget = budget
                setNumThreads(threads)
                let got = convolve(c, x, w, b)
                assertClose(got, want, "case \(i) budget \(budget) threads \(threads): output")
                let grads = try grad(of: [got], wrt: [x, w, b], gradOutputs: [seed], retainGraph: true)
                for (k, name) in ["input", "weight", "bias"].enumerated() {
                    assertClose(grads[k], wantGrads[k], "case \(i) budget \(budget) threads \(threads): \(name) gradient")
                }
                // createGraph takes the composite backward; it must agree with the kernel's.
                let recorded = try grad(of: [got], wrt: [x, w, b], gradOutputs: [seed], createGraph: true)
                for k in 0..<3 { assertClose(recorded[k], grads[k], "case \(i) budget \(budget): recorded gradient \(k)") }
            }
        }
    }

    func testGradcheckWithOneSamplePerChunk() throws {
        ConvPlan.columnBudget = 1
        let (x, w, b) = makeInputs(Case(batch: 2, channels: 4, size: (5, 6), outChannels: 4, kernel: (3, 3),
                                        stride: (2, 1), padding: .symmetric(1), groups: 2), seed: 5)
        XCTAssertTrue(try gradcheck({ conv2d($0[0], weight: $0[1], bias: $0[2], stride: (2, 1), padding: .symmetric(1), groups: 2) },
                                    inputs: [x, w, b]))
    }

    func testAnEmptyBatchGivesZeroGradients() {
        let conv = Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1)
        let x = Tensor.zeros([0, 2, 5, 5]).requiresGrad_()
        let y = conv(x)
        XCTAssertEqual(y.shape, [0, 3, 5, 5])
        y.sum().backward()
        XCTAssertEqual(conv.weight.grad!.scalars, [Float](repeating: 0, count: 54))
        XCTAssertEqual(conv.bias!.grad!.scalars, [0, 0, 0])
        XCTAssertEqual(x.grad!.shape, [0, 2, 5, 5])
    }

    func testOnlyRequestedGradientsAreComputed() throws {
        let x = Tensor.randn([3, 2, 8, 8], generator: Generator(seed: 1))  // data: no gradient wanted
        let conv = Conv2d(inChannels: 2, outChannels: 4, kernelSize: 3)
        conv(x).sum().backward()
        XCTAssertNil(x.grad)
        XCTAssertNotNil(conv.weight.grad)
        XCTAssertEqual(conv.bias!.grad!.scalars, [Float](repeating: 3 * 36, count: 4))
    }
}
