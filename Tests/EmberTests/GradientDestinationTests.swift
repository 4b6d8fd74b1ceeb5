import XCTest
@testable import Ember

/// The hooks the engine owns for code that manages gradients (data parallelism): callbacks when
/// backward ends and gradients still being completed (destinations: AutogradTests), and the
/// optimizers' typed hyperparameters.
final class GradientDestinationTests: XCTestCase {
    func testCallbacksRunWhenBackwardEndsOncePerKey() {
        let owner = NSObject()
        var log: [String] = []
        let w = Tensor([1, 2], requiresGrad: true)
        w.registerPostAccumulateGradHook { _ in
            log.append("hook")
            queueBackwardCallback(once: owner) { log.append("end") }
            queueBackwardCallback(once: owner) { log.append("twice") }
        }
        let b = Tensor([3, 4], requiresGrad: true)
        b.registerPostAccumulateGradHook { _ in queueBackwardCallback(once: owner) { log.append("other") } }
        (w * b).sum().backward()
        XCTAssertEqual(log.filter { $0 == "end" }.count + log.filter { $0 == "other" }.count, 1, "\(log)")
        XCTAssertEqual(log.last.map { ["end", "other"].contains($0) }, true, "callbacks run after every hook: \(log)")
        log = []
        (w * b).sum().backward()
        XCTAssertEqual(log.filter { $0 != "hook" }.count, 1, "a new backward queues again: \(log)")
    }

    func testACallbackErrorEndsBackwardWithIt() {
        struct Failure: Error {}
        let w = Tensor([1, 2], requiresGrad: true)
        w.registerPostAccumulateGradHook { _ in queueBackwardCallback { throw Failure() } }
        XCTAssertThrowsError(try (w * 2).sum().checkedBackward()) { XCTAssertTrue($0 is Failure) }
    }

    func testOptimizersCompletePendingGradientsFirst() {
        final class Completer: PendingGradient {
            var calls = 0
            let target: Tensor
            init(_ t: Tensor) { target = t }
            func completeGradients() throws {
                calls += 1
                target.grad = Tensor([10, 10])
                target.setPendingGradient(nil)
            }
        }
        let p = Tensor([1, 1], requiresGrad: true)
        p.grad = Tensor([0, 0])
        let completer = Completer(p)
        p.setPendingGradient(completer)
        XCTAssertTrue(p.hasPendingGradient)
        SGD(parameters: [p], learningRate: 0.1).step()
        XCTAssertEqual(completer.calls, 1)
        XCTAssertFalse(p.hasPendingGradient)
        XCTAssertEqual(p.scalars, [0, 0], "the step used the completed gradient")
    }

    func testTypedHyperparametersRoundTripUnderPyTorchKeys() throws {
        let p = Tensor([1], requiresGrad: true)
        let sgd = SGD(parameters: [p], learningRate: 0.1, momentum: 0.9, nesterov: true)
        let h = sgd.paramGroups[0].hyperparameters(SGD.Hyperparameters.self)
        XCTAssertEqual(h, SGD.Hyperparameters(momentum: 0.9, nesterov: true))
        XCTAssertEqual(sgd.stateDict().groups[0]["momentum"], 0.9)
        XCTAssertEqual(sgd.stateDict().groups[0]["nesterov"], 1)
        var changed = h
        changed.weightDecay = 0.01
        sgd.paramGroups[0].setHyperparameters(changed)
        XCTAssertEqual(sgd.paramGroups[0]["weight_decay"], 0.01)
        XCTAssertThrowsError(try SGD.Hyperparameters.read(["momentum": 0.9])) { XCTAssertTrue("\($0)".contains("'dampening'"), "\($0)") }
        XCTAssertThrowsError(try SGD.Hyperparameters.checkKnown(["momentm": 0.9], optimizer: "SGD")) {
            XCTAssertTrue("\($0)".contains("'momentm'"), "\($0)")
        }
        let adam = Adam(paramGroups: [ParamGroup(params: [p], learningRate: 0.1, hyperparameters: Adam.Hyperparameters(betas: (0.8, 0.9)))])
        XCTAssertEqual(adam.paramGroups[0].hyperparameters(Adam.Hyperparameters.self).beta1, 0.8)
        XCTAssertTrue(adam.updatesElementwise)
    }
}
