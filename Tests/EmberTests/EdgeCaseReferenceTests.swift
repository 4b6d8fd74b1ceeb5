import XCTest
@testable import Ember

/// PyTorch 2.15's conventions where an op is not differentiable (clamp at its bounds) and
/// BatchNorm without running statistics (`scripts/generate_edge_fixtures.py`).
final class EdgeCaseReferenceTests: XCTestCase {
    struct BatchNormCase: Decodable {
        let keys: [String]
        let weight: [Double], bias: [Double]
        let input: OpCase.Output
        let train: [Double], eval: [Double]
    }
    struct Fixtures: Decodable {
        let torch: String
        let cases: [OpCase]
        let batchNormUntracked: BatchNormCase
    }
    static let fixtures = try! Fixture.load("edges.json", as: Fixtures.self)

    static let table: [String: ([Tensor]) -> Tensor] = [
        "clampScalar": { $0[0].clamp(min: -0.5, max: 0.5) },
        "norm2Dim": { $0[0].norm(2, dim: 1) },
        "norm2All": { $0[0].norm() },
        "clampScalarMin": { $0[0].clamp(min: -0.5) },
        "clampScalarMax": { $0[0].clamp(max: 0.5) },
        "clampTensor": { $0[0].clamp(min: $0[1], max: $0[2]) },
        "clampTensorMin": { $0[0].clamp(min: $0[1], max: nil) },
        "clampTensorMax": { $0[0].clamp(min: nil, max: $0[1]) },
        "clampTensorBroadcast": { $0[0].clamp(min: $0[1], max: $0[2]) },
    ]

    func testValuesAndGradientsMatchPyTorch() {
        XCTAssertEqual(Set(Self.fixtures.cases.map(\.op)), Set(Self.table.keys))
        for c in Self.fixtures.cases {
            let inputs = c.makeInputs(.float64)
            let out = Self.table[c.op]!(inputs)
            XCTAssertEqual(out.doubleScalars, c.output.values, c.name)
            (out * Tensor(c.weight!, shape: out.shape, dtype: .float64)).sum().backward()
            for (i, want) in c.grads!.enumerated() {
                guard let want else { continue }
                XCTAssertNil(firstMismatch(inputs[i].grad!.doubleScalars, want, rtol: 1e-12, atol: 1e-12), "\(c.name): grad of input \(i)")
            }
        }
    }

    /// Away from ties the tensor-bound clamp is smooth: finite differences agree, twice.
    func testTensorClampPassesGradcheckAwayFromTies() throws {
        let g = Generator(seed: 3)
        let x = Tensor.randn([3, 4], dtype: .float64, generator: g).requiresGrad_()
        let lo = Tensor([-0.7, -0.3, 0.1, -1.2], dtype: .float64, requiresGrad: true)
        let hi = Tensor([0.8], dtype: .float64, requiresGrad: true)
        XCTAssertTrue(try gradcheck({ $0[0].clamp(min: $0[1], max: $0[2]) * $0[0] }, inputs: [x, lo, hi]))
        XCTAssertTrue(try gradgradcheck({ $0[0].clamp(min: $0[1], max: $0[2]) * $0[0] }, inputs: [x, lo, hi]))
    }

    func testBatchNormWithoutRunningStatisticsMatchesPyTorch() throws {
        let f = Self.fixtures.batchNormUntracked
        let bn = BatchNorm1d(numFeatures: 3, trackRunningStats: false)
        XCTAssertEqual(bn.stateDict().keys.sorted(), f.keys, "PyTorch registers no running statistics")
        XCTAssertNil(bn.runningMean)
        try bn.loadStateDict(["weight": Tensor(f.weight, dtype: .float32), "bias": Tensor(f.bias, dtype: .float32)])
        let x = Tensor(f.input.values, shape: f.input.shape, dtype: .float32)
        XCTAssertNil(firstMismatch(bn(x).doubleScalars, f.train, rtol: 1e-5, atol: 1e-5))
        bn.eval()
        XCTAssertNil(firstMismatch(bn(x).doubleScalars, f.eval, rtol: 1e-5, atol: 1e-5), "evaluation uses batch statistics")
        // A tracking BatchNorm's state dict does not load into it, and the reverse: as in PyTorch.
        XCTAssertThrowsError(try BatchNorm1d(numFeatures: 3).loadStateDict(bn.stateDict()))
        XCTAssertThrowsError(try bn.loadStateDict(BatchNorm1d(numFeatures: 3).stateDict()))
    }
}
