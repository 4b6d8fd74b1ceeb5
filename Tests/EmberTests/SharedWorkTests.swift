import XCTest
@testable import Ember

/// Kernels whose items are computed alone share them over a rank's product threads: the bits
/// must be one thread's, and every item must be written.
final class SharedWorkTests: XCTestCase {
    private func onThreads<R>(_ threads: Int, _ body: () -> R) -> R {
        let saved = numThreads
        defer { setNumThreads(saved) }
        setNumThreads(threads)
        return body()
    }

    func testShareCoversEveryItemOnceInContiguousRuns() {
        for (count, grain) in [(0, 1), (1, 1), (7, 2), (100_003, 1 << 14), (65_536, 1 << 14)] {
            var seen = [Int](repeating: 0, count: count)
            let lock = NSLock()
            onThreads(2) {
                Kernels.share(count, grain: grain) { start, end in
                    lock.lock()
                    defer { lock.unlock() }
                    for i in start..<end { seen[i] += 1 }
                }
            }
            XCTAssertEqual(seen.firstIndex { $0 != 1 }, nil, "count \(count), grain \(grain)")
        }
    }

    /// A team runs each worker once, in the caller's precision, with products on one thread
    /// (a worker's own split is the parallelism); a nested team runs on its caller.
    func testATeamRunsEachWorkerOnceOnOneProductThread() {
        let workers = 5
        var runs = [Int](repeating: 0, count: workers), threads = runs, nested = runs
        var precisions = [Precision](repeating: .float32, count: workers)
        let lock = NSLock()
        onThreads(2) {
            autocast(.bfloat16) {
                Kernels.team(workers) { w in
                    var inner = 0
                    Kernels.team(3) { _ in inner += 1 }
                    lock.lock()
                    defer { lock.unlock() }
                    runs[w] += 1
                    threads[w] = numThreads
                    nested[w] = inner
                    precisions[w] = Precision.current
                }
            }
            XCTAssertEqual(numThreads, 2, "the caller's count after the team")
        }
        XCTAssertEqual(runs, [1, 1, 1, 1, 1])
        XCTAssertEqual(threads, [1, 1, 1, 1, 1])
        XCTAssertEqual(nested, [3, 3, 3, 3, 3])
        XCTAssertEqual(precisions, [Precision](repeating: .bfloat16, count: workers))
    }

    /// Packed self-attention shares its heads (whole heads per thread, their products on one).
    func testAttentionHeadsSharedGiveOneThreadsBits() {
        let g = Generator(seed: 8)
        let qkv = Tensor.randn([6, 32, 3 * 64], generator: g), weight = Tensor.randn([6, 32, 64], generator: g)
        for precision in [Precision.float32, .bfloat16] {
            func run() -> [[Float]] {
                let x = qkv.clone().requiresGrad_()
                let out = autocast(precision) { Tensor.packedSelfAttention(x, numHeads: 8, causal: true) }
                (out * weight).sum().backward()
                return [out.scalars, x.grad!.scalars]
            }
            let one = onThreads(1, run), two = onThreads(2, run)
            for (i, (a, b)) in zip(one, two).enumerated() {
                let differs = a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
                XCTAssertNil(differs, "\(precision) \(i == 0 ? "output" : "gradient"): two threads differ at \(differs ?? 0)")
            }
        }
    }

    func testActivationsSoftmaxLayerNormAndAdamGiveOneThreadsBits() {
        let g = Generator(seed: 3)
        let x = Tensor.randn([3, 40_001], generator: g) * 4, grad = Tensor.randn([3, 40_001], generator: g)
        let (batch, rows, cols) = (24, 48, 40)
        let scores = Tensor.randn([batch, rows, cols], generator: g) * 3, mask = Tensor.randn([batch, rows, cols], generator: g)
        let oneMask = Tensor.randn([rows, cols], generator: g), gp = Tensor.randn([batch, rows, cols], generator: g)
        let lnInput = Tensor.randn([1_559, 77], generator: g), lnWeight = Tensor.randn([77], generator: g), start = Tensor.randn([100_003], generator: g)
        let gradients = (0..<3).map { _ in Tensor.randn([100_003], generator: g) }
        // Three AdamW steps on one large parameter.
        func adamSteps() -> Tensor {
            let w = start.clone()
            let adam = Adam(paramGroups: [ParamGroup(params: [w], learningRate: 0.01, hyperparameters: Adam.Hyperparameters(weightDecay: 0.1))],
                            decoupledWeightDecay: true)
            for gradient in gradients {
                w.grad = gradient.clone()
                adam.step()
            }
            return w
        }
        func run() -> [[Float]] {
            let p = Kernels.attentionSoftmax(scores, scale: 0.7, mask: mask, causal: true, batch: batch, rows: rows, cols: cols)
            let shared = Kernels.attentionSoftmax(scores, scale: 0.7, mask: oneMask, causal: false, batch: batch, rows: rows, cols: cols)
            let dp = Kernels.attentionSoftmaxBackward(gp, p, cols: cols, scale: 0.7)
            let activations = [x.gelu(), x.gelu(approximate: .tanh), x.silu(), Kernels.geluBackward(grad, x), Kernels.siluBackward(grad, x)]
            let norm = Kernels.layerNorm(lnInput, weight: lnWeight, bias: nil, rows: 1_559, width: 77, eps: 1e-5)
            return (activations + [p, shared, dp, norm.0, norm.1, norm.2, adamSteps()]).map { $0.scalars }
        }
        let one = onThreads(1, run), two = onThreads(2, run)
        for (i, (a, b)) in zip(one, two).enumerated() {
            XCTAssertEqual(a.count, b.count)
            let differs = a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
            XCTAssertNil(differs, "result \(i): two threads differ at \(differs ?? 0)")
        }
    }
}
