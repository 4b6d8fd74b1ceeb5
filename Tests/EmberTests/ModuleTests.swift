import XCTest
@testable import Ember

final class ModuleTests: XCTestCase {
    final class Block: Module {
        let conv = Conv2d(inChannels: 1, outChannels: 2, kernelSize: 3, padding: 1)
        let norm = BatchNorm2d(numFeatures: 2)
        override func forward(_ x: Tensor) -> Tensor { norm(conv(x)).relu() }
    }

    final class Net: Module {
        let stem = Block()
        let layers: [Module] = [Linear(inFeatures: 4, outFeatures: 4), Linear(inFeatures: 4, outFeatures: 2)]
        let heads: [String: Module] = ["cls": Linear(inFeatures: 2, outFeatures: 3), "aux": Linear(inFeatures: 2, outFeatures: 1, bias: false)]
        @Parameter var scale = Tensor.ones([1])
        @Buffer var steps = Tensor.zeros([1])
        let notAParameter = Tensor.ones([5])
        override func forward(_ x: Tensor) -> Tensor { x }
    }

    func testNamesFollowPyTorchForAttributesListsAndDictionaries() {
        let net = Net()
        XCTAssertEqual(net.namedParameters().map(\.0), [
            "scale", "stem.conv.weight", "stem.conv.bias", "stem.norm.weight", "stem.norm.bias",
            "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
            "heads.aux.weight", "heads.cls.weight", "heads.cls.bias",
        ])
        XCTAssertEqual(net.namedBuffers().map(\.0), ["steps", "stem.norm.running_mean", "stem.norm.running_var", "stem.norm.num_batches_tracked"])
        XCTAssertEqual(net.children.count, 5)
        XCTAssertEqual(net.namedModules().count, 1 + 3 + 2 + 2)
        XCTAssertEqual(net.parameterCount, 1 + (18 + 2) + (2 + 2) + (16 + 4) + (8 + 2) + 2 + (6 + 3))
        XCTAssertTrue(net.summary().contains("Total parameters: \(net.parameterCount)"))
        let seq = Sequential(Linear(inFeatures: 10, outFeatures: 5), ReLU(), Linear(inFeatures: 5, outFeatures: 1))
        XCTAssertEqual(seq.stateDictKeys(), ["0.weight", "0.bias", "2.weight", "2.bias"])
    }

    func testTrainEvalAndFreezingReachEveryModule() {
        let net = Net()
        net.eval()
        XCTAssertTrue(net.namedModules().allSatisfy { !$0.1.isTraining })
        net.train()
        XCTAssertTrue(net.namedModules().allSatisfy { $0.1.isTraining })
        net.requiresGrad_(false)
        XCTAssertTrue(net.parameters().allSatisfy { !$0.requiresGrad })
        net.requiresGrad_(true)
        XCTAssertTrue(net.parameters().allSatisfy { $0.requiresGrad })
        var visited = 0
        net.apply { _ in visited += 1 }
        XCTAssertEqual(visited, net.namedModules().count)
        let lin = Linear(inFeatures: 2, outFeatures: 1)
        (lin(Tensor([1, 2], shape: [1, 2])).sum()).backward()
        XCTAssertNotNil(lin.weight.grad)
        lin.zeroGrad()
        XCTAssertNil(lin.weight.grad)
    }

    func testLoadStateDictChecksKeysAndShapesBeforeChangingAnything() throws {
        let a = Sequential(Linear(inFeatures: 3, outFeatures: 2)), b = Sequential(Linear(inFeatures: 3, outFeatures: 2, generator: Generator(seed: 9)))
        let before = a.stateDict()["0.weight"]!.scalars
        var dict = b.stateDict()
        dict["0.extra"] = Tensor([1])
        XCTAssertThrowsError(try a.loadStateDict(dict)) { XCTAssertTrue("\($0)".contains("unexpected keys: 0.extra"), "\($0)") }
        dict["0.extra"] = nil
        dict["0.bias"] = nil
        XCTAssertThrowsError(try a.loadStateDict(dict)) { XCTAssertTrue("\($0)".contains("missing keys: 0.bias"), "\($0)") }
        dict["0.bias"] = Tensor([1, 2, 3])
        XCTAssertThrowsError(try a.loadStateDict(dict)) { error in
            XCTAssertEqual(error as? StateDictError, .shapeMismatch(key: "0.bias", expected: [2], got: [3]))
        }
        XCTAssertEqual(a.stateDict()["0.weight"]!.scalars, before, "a failed load changes nothing")
        try a.loadStateDict(["0.weight": b.stateDict()["0.weight"]!], strict: false)
        XCTAssertEqual(a.stateDict()["0.weight"]!.scalars, b.stateDict()["0.weight"]!.scalars)
        // Loading copies in place, so an optimizer holding the parameters keeps working.
        let weight = a.parameters()[0]
        try a.loadStateDict(b.stateDict())
        XCTAssertTrue(weight === a.parameters()[0])
    }

    func testDefaultInitialisationMatchesPyTorchsBounds() {
        let layer = Linear(inFeatures: 400, outFeatures: 300, generator: Generator(seed: 1))
        let bound = Float(1 / 400.0.squareRoot())
        XCTAssertLessThanOrEqual(layer.weight.abs().max().item(), bound)
        XCTAssertGreaterThan(layer.weight.abs().max().item(), bound * 0.99)
        XCTAssertLessThanOrEqual(layer.bias!.abs().max().item(), bound)
        let w = Init.kaimingNormal(Tensor.zeros([256, 512]), nonlinearity: "relu", generator: Generator(seed: 2))
        XCTAssertEqual(w.std().item(), Float((2.0 / 512).squareRoot()), accuracy: 0.002)
        let x = Init.xavierUniform(Tensor.zeros([100, 200]), generator: Generator(seed: 3))
        XCTAssertLessThanOrEqual(x.abs().max().item(), Float((6.0 / 300).squareRoot()))
        XCTAssertEqual(Init.fans([8, 4, 3, 3]).fanIn, 36)
        XCTAssertEqual(Init.gain("leaky_relu", param: 0), 2.0.squareRoot(), accuracy: 1e-12)
    }

    func testDropoutScalesInTrainingAndIsIdentityInEval() {
        let drop = Dropout(p: 0.3, generator: Generator(seed: 4))
        let x = Tensor.ones([100_000])
        let y = drop(x)
        let kept = y.gt(0).mean().item()
        XCTAssertEqual(kept, 0.7, accuracy: 0.01)
        XCTAssertEqual(y.max().item(), 1 / 0.7, accuracy: 1e-5)
        XCTAssertEqual(y.mean().item(), 1, accuracy: 0.02)
        drop.eval()
        XCTAssertTrue(drop(x) === x)
        let channels = Dropout2d(p: 0.5, generator: Generator(seed: 5))(Tensor.ones([4, 8, 3, 3]))
        for n in 0..<4 {
            for c in 0..<8 {
                let plane = channels[n][c].scalars
                XCTAssertTrue(plane.allSatisfy { $0 == plane[0] }, "a channel is dropped or kept whole")
            }
        }
    }

    func testGradientClipping() {
        let a = Tensor([3, 4], requiresGrad: true)
        (a * a).sum().backward()   // grad (6, 8), norm 10
        let norm = GradClip.clipNorm([a], maxNorm: 5)
        XCTAssertEqual(norm, 10, accuracy: 1e-5)
        XCTAssertEqual(a.grad!.scalars[0], 3, accuracy: 1e-4)
        XCTAssertEqual(a.grad!.scalars[1], 4, accuracy: 1e-4)
        GradClip.clipValue([a], clipValue: 3.5)
        XCTAssertEqual(a.grad!.scalars[1], 3.5)
        XCTAssertLessThan(a.grad!.scalars[0], 3.5)
    }
}
