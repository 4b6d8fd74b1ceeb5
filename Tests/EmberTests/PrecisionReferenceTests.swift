import XCTest
@testable import Ember

/// Ember's bf16 autocast against PyTorch's (`torch.autocast("cpu", dtype=torch.bfloat16)`,
/// Fixtures/bf16.json from scripts/generate_bf16_fixtures.py), forward and backward: matmul,
/// linear, conv2d, attention, causal multi-head self-attention (the packed path), an LSTM. Both round the
/// products' operands to bfloat16 (8 significant bits: 2⁻⁸ relative each); PyTorch also rounds each
/// product's result and, in its LSTM, the gates. So results agree to about one bfloat16 rounding
/// of their size (measured: 2⁻⁸·⁵ of the largest magnitude at worst): within 2⁻⁷ for products and
/// attention, 2⁻⁶ for the LSTM's chain of steps.
final class PrecisionReferenceTests: XCTestCase {
    struct Case: Decodable {
        struct T: Decodable { let shape: [Int]; let values: [Double] }
        let name: String, inputs: [T], params: [String: T], output: T, weight: [Double], grads: [[Double]], paramGrads: [String: [Double]]
    }
    struct File: Decodable { let cases: [Case] }

    func tensor(_ t: Case.T, grad: Bool = false) -> Tensor {
        let x = Tensor(t.values.map { Float($0) }, shape: t.shape)
        return grad ? x.requiresGrad_() : x
    }

    func assertClose(_ ours: [Float], _ theirs: [Double], _ tolerance: Double, _ what: String) {
        let scale = theirs.map(Swift.abs).max() ?? 1
        let worst = zip(ours, theirs).map { Swift.abs(Double($0) - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance * max(scale, 1e-6), "\(what): differs by \(worst), scale \(scale)")
    }

    func testEveryCaseMatchesPyTorchsAutocastForwardAndBackward() throws {
        for c in try Fixture.load("bf16.json", as: File.self).cases {
            let xs = c.inputs.map { tensor($0, grad: true) }
            let module: Module?
            switch c.name {
            case "linear": module = Linear(inFeatures: 32, outFeatures: 16)
            case "conv2d": module = Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1)
            case "lstm": module = LSTM(inputSize: 8, hiddenSize: 16, batchFirst: true)
            case "mha": module = MultiheadAttention(embedDim: 16, numHeads: 2, batchFirst: true)
            default: module = nil
            }
            if let module { try module.loadStateDict(c.params.mapValues { tensor($0) }) }
            let out: Tensor = autocast(.bfloat16) {
                switch c.name {
                case "matmul": return xs[0].matmul(xs[1])
                case "attention": return Tensor.scaledDotProductAttention(xs[0], xs[1], xs[2], isCausal: true)
                case "lstm": return (module as! LSTM)(xs[0]).output
                // Self-attention, causal, no weights: the packed path (Q, K, V rounded as one block).
                case "mha": return (module as! MultiheadAttention)(xs[0], xs[0], xs[0], needWeights: false, isCausal: true).output
                default: return module!(xs[0])
                }
            }
            autocast(.bfloat16) { (out * Tensor(c.weight.map { Float($0) }, shape: out.shape)).sum().backward() }
            let tolerance = c.name == "lstm" ? 0x1p-6 : 0x1p-7
            assertClose(out.scalars, c.output.values, tolerance, "\(c.name) output")
            for (i, g) in c.grads.enumerated() { assertClose(xs[i].grad!.scalars, g, tolerance, "\(c.name) input \(i) gradient") }
            for (name, p) in module?.namedParameters() ?? [] { assertClose(p.grad!.scalars, c.paramGrads[name]!, tolerance, "\(c.name) \(name) gradient") }
        }
    }
}
