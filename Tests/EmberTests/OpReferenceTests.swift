import XCTest
@testable import Ember

/// Every op against PyTorch's values (forward and gradients), and against finite differences.
final class OpReferenceTests: XCTestCase {
    static let fixtures = try! Fixture.load("ops.json", as: OpFixtures.self)

    func testEveryFixtureCaseHasAnEmberOpAndViceVersa() {
        let fixtureOps = Set(Self.fixtures.cases.map(\.op))
        XCTAssertEqual(fixtureOps.subtracting(opTable.keys), [], "fixture ops without an Ember expression")
        XCTAssertEqual(Set(opTable.keys).subtracting(fixtureOps), [], "Ember expressions without a fixture")
    }

    /// Runs one case in `dtype` and compares output and gradients with PyTorch's.
    private func check(_ c: OpCase, dtype: DType, rtol: Double, atol: Double) {
        let inputs = c.makeInputs(dtype)
        let out = opTable[c.op]!(inputs)
        XCTAssertEqual(out.shape, c.output.shape, "\(c.name): output shape")
        if let m = firstMismatch(out.doubleScalars, c.output.values, rtol: rtol, atol: atol) {
            XCTFail("\(c.name) [\(dtype)]: output[\(m.index)] = \(m.got), PyTorch \(m.want)")
        }
        guard let weight = c.weight, let grads = c.grads else { return }
        (out * Tensor(weight, shape: out.shape, dtype: dtype)).sum().backward()
        for (i, (input, want)) in zip(inputs, grads).enumerated() {
            guard let want else {
                XCTAssertTrue(input.grad == nil || input.grad!.doubleScalars.allSatisfy { $0 == 0 },
                              "\(c.name): input \(i) should get no gradient")
                continue
            }
            guard let got = input.grad else { XCTFail("\(c.name): input \(i) got no gradient"); continue }
            XCTAssertEqual(got.shape, input.shape, "\(c.name): gradient shape of input \(i)")
            if let m = firstMismatch(got.doubleScalars, want, rtol: rtol, atol: atol) {
                XCTFail("\(c.name) [\(dtype)]: grad of input \(i) [\(m.index)] = \(m.got), PyTorch \(m.want)")
            }
        }
    }

    func testFloat64MatchesPyTorch() {
        for c in Self.fixtures.cases { check(c, dtype: .float64, rtol: 1e-9, atol: 1e-11) }
    }

    func testFloat32MatchesPyTorch() {
        for c in Self.fixtures.cases { check(c, dtype: .float32, rtol: 2e-4, atol: 2e-5) }
    }

    func testEveryDifferentiableOpPassesGradcheck() throws {
        for c in Self.fixtures.cases where c.grads != nil {
            let inputs = c.makeInputs(.float64)
            do {
                try gradcheck(opTable[c.op]!, inputs: inputs)
            } catch {
                XCTFail("\(c.name): \(error)")
            }
        }
    }

    func testSecondDerivativesPassGradgradcheck() throws {
        for c in Self.fixtures.cases where c.grads != nil {
            let inputs = c.makeInputs(.float64)
            do {
                try gradgradcheck(opTable[c.op]!, inputs: inputs, atol: 1e-4, rtol: 1e-3)
            } catch {
                XCTFail("\(c.name): \(error)")
            }
        }
    }
}
