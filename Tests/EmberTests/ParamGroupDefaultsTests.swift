import XCTest
@testable import Ember

/// Parameter groups that name only some options, as in PyTorch:
/// `SGD([{'params': a, 'lr': 0.1}, {'params': b}], lr=0.01, momentum=0.9)`.
final class ParamGroupDefaultsTests: XCTestCase {
    func model() -> (Linear, Linear) {
        (Linear(inFeatures: 3, outFeatures: 2, generator: Generator(seed: 1)), Linear(inFeatures: 2, outFeatures: 1, generator: Generator(seed: 2)))
    }

    func train(_ make: ([Tensor], [Tensor]) throws -> Optimizer) throws -> [Float] {
        let (a, b) = model()
        let optimizer = try make(a.parameters(), b.parameters())
        let x = Tensor.randn([8, 3], generator: Generator(seed: 3))
        for _ in 0..<5 {
            optimizer.zeroGrad()
            (b(a(x).relu()) * b(a(x).relu())).mean().backward()
            optimizer.step()
        }
        return a.weight.scalars + b.weight.scalars
    }

    /// The group keeps its decoded hyperparameters between steps; a change to its options (as a
    /// schedule makes to momentum) must reach the very next step.
    func testAChangedOptionReachesTheNextStep() throws {
        let (a, _) = model()
        let x = Tensor.randn([8, 3], generator: Generator(seed: 3))
        let sgd = SGD(parameters: a.parameters(), learningRate: 0.1, momentum: 0.9)
        func step() { sgd.zeroGrad(); a(x).square().mean().backward(); sgd.step() }
        step()
        let before = a.weight.scalars
        sgd.paramGroups[0]["weight_decay"] = 1000
        step()
        let (b, _) = model()
        let reference = SGD(parameters: b.parameters(), learningRate: 0.1, momentum: 0.9)
        reference.zeroGrad(); b(x).square().mean().backward(); reference.step()
        XCTAssertEqual(b.weight.scalars, before)
        reference.paramGroups[0].setHyperparameters(SGD.Hyperparameters(momentum: 0.9, weightDecay: 1000))
        reference.zeroGrad(); b(x).square().mean().backward(); reference.step()
        XCTAssertEqual(a.weight.scalars, b.weight.scalars)
        XCTAssertGreaterThan(zip(a.weight.scalars, before).map { abs($0 - $1) }.max()!, 10, "weight decay of 1000 moved nothing")
    }

    func testLeftOutOptionsTakeTheOptimizersArgumentsAsPyTorchsDo() throws {
        let partial = try train { a, b in
            try SGD(paramGroups: [ParamGroup(params: a, options: ["lr": 0.1]), ParamGroup(params: b, options: ["dampening": 0.5])],
                    learningRate: 0.01, momentum: 0.9)
        }
        let spelt = try train { a, b in
            SGD(paramGroups: [ParamGroup(params: a, learningRate: 0.1, hyperparameters: SGD.Hyperparameters(momentum: 0.9)),
                              ParamGroup(params: b, learningRate: 0.01, hyperparameters: SGD.Hyperparameters(momentum: 0.9, dampening: 0.5))])
        }
        XCTAssertEqual(partial, spelt)
        let adamw = try train { a, b in try AdamW(paramGroups: [ParamGroup(params: a, options: [:]), ParamGroup(params: b, options: ["weight_decay": 0])], learningRate: 0.01) }
        let adamwSpelt = try train { a, b in
            AdamW(paramGroups: [ParamGroup(params: a, learningRate: 0.01, hyperparameters: Adam.Hyperparameters(weightDecay: 0.01)),
                                ParamGroup(params: b, learningRate: 0.01, hyperparameters: Adam.Hyperparameters(weightDecay: 0))])
        }
        XCTAssertEqual(adamw, adamwSpelt)
    }

    func testAMisspeltKeyIsAThrownErrorNamingItAndTheKnownOnes() {
        let (a, _) = model()
        XCTAssertThrowsError(try SGD(paramGroups: [ParamGroup(params: a.parameters(), options: ["momentun": 0.9])], learningRate: 0.1)) {
            XCTAssertTrue("\($0)".contains("'momentun'") && "\($0)".contains("momentum, dampening"), "\($0)")
        }
    }
}
