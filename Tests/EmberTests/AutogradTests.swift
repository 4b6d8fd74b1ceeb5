import XCTest
import Foundation
@testable import Ember

/// The engine's semantics: accumulation, retained and freed graphs, hooks, custom functions,
/// grad mode, higher-order gradients.
final class AutogradTests: XCTestCase {
    func testDesignExampleGradients() {
        // d/da of sum(sigmoid(relu(2a - 1) @ b + c)) checked against hand-derived values.
        let a = Tensor([1, -1, 0.25, 2], shape: [2, 2], requiresGrad: true)
        let b = Tensor([0.5, -1, 2, 1], shape: [2, 2], requiresGrad: true)
        let c = Tensor([0.1, 0.2], requiresGrad: true)
        let h = (a * 2 - 1).relu()
        let y = (h.matmul(b) + c).sigmoid().sum()
        y.backward()
        let z = (h.matmul(b) + c).detach()
        let s = z.sigmoid()
        let dz = s * (1 - s)
        XCTAssertTrue(c.grad!.allClose(dz.sum(dim: 0), rtol: 1e-6))
        XCTAssertTrue(b.grad!.allClose(h.detach().t().matmul(dz), rtol: 1e-6))
        let dh = dz.matmul(b.detach().t())
        XCTAssertTrue(a.grad!.allClose(dh * (a.detach() * 2 - 1).gt(0) * 2, rtol: 1e-6))
    }

    func testLeafGradientsAccumulateAcrossBackwardCalls() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let y = (x * x).sum()
        y.backward(retainGraph: true)
        XCTAssertEqual(x.grad!.scalars, [2, 4, 6])
        y.backward()
        XCTAssertEqual(x.grad!.scalars, [4, 8, 12])
        x.grad = nil
        (x * 3).sum().backward()
        XCTAssertEqual(x.grad!.scalars, [3, 3, 3])
    }

    /// Backward hands a leaf the computed gradient itself when nothing else holds it; whatever
    /// someone else can see must never be written by a later in-place accumulation.
    func testLeafGradientsNeverAliasWhatOthersHold() {
        // The caller's seed, passed through a view op to a leaf.
        let x = Tensor([1, 2, 3, 4], requiresGrad: true)
        let seed = Tensor([1, 1, 1, 1], shape: [2, 2])
        x.reshape([2, 2]).backward(gradient: seed, retainGraph: true)
        x.reshape([2, 2]).backward(gradient: seed)
        XCTAssertEqual(seed.scalars, [1, 1, 1, 1])
        XCTAssertEqual(x.grad!.scalars, [2, 2, 2, 2])

        // One gradient object for two leaves (the rule of `+` returns it twice).
        let a = Tensor([1, 2], requiresGrad: true), b = Tensor([3, 4], requiresGrad: true)
        (a + b).sum().backward()
        XCTAssertFalse(a.grad! === b.grad!)
        XCTAssertFalse(a.grad!.storage === b.grad!.storage)
        (a * 5).sum().backward()
        XCTAssertEqual(a.grad!.scalars, [6, 6])
        XCTAssertEqual(b.grad!.scalars, [1, 1])

        // A hook that keeps the gradient it saw.
        let w = Tensor([1, 2], requiresGrad: true)
        var seen: [Tensor] = []
        w.registerHook { seen.append($0); return nil }
        (w * 2).sum().backward()
        (w * 2).sum().backward()
        XCTAssertEqual(seen.map(\.scalars), [[2, 2], [2, 2]])
        XCTAssertEqual(w.grad!.scalars, [4, 4])

        // The usual case: a fresh gradient becomes .grad without a copy, and later backward
        // passes accumulate into it.
        let v = Tensor([1, 2], requiresGrad: true)
        (v * 3).sum().backward()
        let first = v.grad!
        (v * 3).sum().backward()
        XCTAssertTrue(v.grad! === first)
        XCTAssertEqual(first.scalars, [6, 6])
    }

    /// A gradient destination (a data-parallel bucket slot): matrix products and convolutions
    /// write a weight's gradient straight into it; every other case copies, and the values never change.
    func testGradientStorageReceivesExactlyTheGradient() throws {
        func reference(_ body: (Tensor) -> Tensor, _ w: Tensor) -> [Float] {
            let plain = w.detach().clone().requiresGrad_()
            body(plain).backward()
            return plain.grad!.scalars
        }
        let x = Tensor.randn([4, 3], generator: Generator(seed: 1))
        let cases: [(String, (Tensor) -> Tensor)] = [
            ("one product", { x.matmul($0, transposeB: true).sum() }),
            ("used twice", { (x.matmul($0, transposeB: true) * 2 + x.matmul($0, transposeB: true).exp()).sum() }),
            ("elementwise", { ($0 * $0).sum() }),
        ]
        for (name, body) in cases {
            for scale in [1.0, 0.25] {  // DataParallel's prescaling for a world of four
                let w = Tensor.randn([5, 3], generator: Generator(seed: 2)).requiresGrad_()
                let slot = Tensor.zeros([5, 3])
                w.setGradientDestination(slot, scale: scale)
                let want = reference(body, w).map { $0 * Float(scale) }
                // grad(of:wrt:) returns gradients and leaves slots alone.
                XCTAssertEqual(try grad(of: [body(w)], wrt: [w])[0]!.scalars, reference(body, w), name)
                XCTAssertEqual(slot.scalars, [Float](repeating: 0, count: 15), name)
                body(w).backward()
                XCTAssertTrue(w.grad === slot, name)
                XCTAssertEqual(slot.scalars, want, "\(name), scale \(scale)")
                // A second backward accumulates into the slot instead of overwriting it.
                body(w).backward()
                XCTAssertEqual(slot.scalars, want.map { $0 * 2 }, "\(name), scale \(scale)")
            }
        }
        // A hook sees (and may keep) the gradient, so the product does not write the slot early.
        let w = Tensor.randn([5, 3], generator: Generator(seed: 2)).requiresGrad_()
        let slot = Tensor.zeros([5, 3])
        w.setGradientDestination(slot)
        var seen: Tensor?
        w.registerHook { seen = $0; return nil }
        x.matmul(w, transposeB: true).sum().backward()
        XCTAssertFalse(seen! === slot)
        XCTAssertEqual(slot.scalars, seen!.scalars)
        // Convolution weights too.
        let conv = Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, generator: Generator(seed: 3))
        let input = Tensor.randn([2, 2, 6, 6], generator: Generator(seed: 4))
        conv(input).sum().backward()
        let want = conv.weight.grad!.scalars
        conv.weight.grad = nil
        conv.weight.setGradientDestination(Tensor.zeros(conv.weight.shape), scale: 0.5)
        conv(input).sum().backward()
        XCTAssertTrue(conv.weight.grad === conv.weight.gradientBuffer)
        XCTAssertEqual(conv.weight.grad!.scalars, want.map { $0 * 0.5 })
    }

    func testATensorUsedTwiceGetsBothContributions() {
        let x = Tensor([3], requiresGrad: true)
        let y = x * x + x.exp() * x
        y.sum().backward()
        let e = Float(Foundation.exp(3.0))
        XCTAssertEqual(x.grad!.item(), 6 + e + 3 * e, accuracy: 1e-3)
    }

    func testNonLeafGradientsOnlyWhenRetained() {
        let x = Tensor([1, 2], requiresGrad: true)
        let h = x * 2
        let k = x * 3
        h.retainGrad()
        (h * k).sum().backward()
        XCTAssertEqual(h.grad!.scalars, [3, 6])
        XCTAssertNil(k.grad)
        XCTAssertFalse(h.isLeaf)
        XCTAssertTrue(x.isLeaf)
        XCTAssertEqual(h.gradFnName, "MulBackward")
    }

    func testSecondBackwardThroughFreedGraphFailsClearly() throws {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = (x.exp() * 2).sum()
        try y.checkedBackward()
        XCTAssertThrowsError(try y.checkedBackward()) { error in
            XCTAssertTrue("\(error)".contains("retainGraph: true"), "\(error)")
        }
    }

    func testBackwardNeedsGradientForNonScalarOutputs() throws {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let y = x * 2
        XCTAssertThrowsError(try y.checkedBackward()) { XCTAssertTrue("\($0)".contains("pass gradient:"), "\($0)") }
        XCTAssertThrowsError(try y.checkedBackward(gradient: Tensor([1, 1]))) {
            XCTAssertTrue("\($0)".contains("[2]") && "\($0)".contains("[3]"), "\($0)")
        }
        try y.checkedBackward(gradient: Tensor([1, 0.5, 2]))
        XCTAssertEqual(x.grad!.scalars, [2, 1, 4])
        XCTAssertThrowsError(try Tensor([1]).checkedBackward())
    }

    func testDetachSharesDataAndStopsGradients() {
        let x = Tensor([1, 2], requiresGrad: true)
        let d = (x * 2).detach()
        XCTAssertFalse(d.requiresGrad)
        XCTAssertTrue(d.isLeaf)
        let y = (x * d).sum()
        y.backward()
        XCTAssertEqual(x.grad!.scalars, [2, 4])
        let v = x.detach()
        XCTAssertTrue(v.storage === x.storage)
    }

    func testNoGradRecordsNothingAndIsPerThread() {
        let x = Tensor([1, 2], requiresGrad: true)
        let inside = noGrad { x * 2 }
        XCTAssertFalse(inside.requiresGrad)
        XCTAssertTrue((x * 2).requiresGrad)
        XCTAssertTrue(enableGrad { noGrad { enableGrad { x * 2 } } }.requiresGrad)

        // Another thread in noGrad does not switch recording off on this one.
        let started = DispatchSemaphore(value: 0), finish = DispatchSemaphore(value: 0)
        let otherThreadResult = LockedBox(false)
        let thread = Thread {
            noGrad {
                started.signal()
                finish.wait()
                otherThreadResult.value = (x * 2).requiresGrad
            }
        }
        thread.start()
        started.wait()
        XCTAssertTrue(GradMode.isEnabled)
        XCTAssertTrue((x * 3).requiresGrad)
        finish.signal()
        while thread.isExecuting || !thread.isFinished { usleep(1000) }
        XCTAssertFalse(otherThreadResult.value)
    }

    func testTensorHooksSeeAndReplaceGradients() {
        let x = Tensor([1, 2], requiresGrad: true)
        let h = x * 3
        var seen: [Float] = []
        h.registerHook { g in seen = g.scalars; return g * 2 }
        let handle = x.registerHook { g in g + 1 }
        h.sum().backward()
        XCTAssertEqual(seen, [1, 1])
        XCTAssertEqual(x.grad!.scalars, [7, 7])  // (1 * 2) * 3 + 1
        handle.remove()
        x.grad = nil
        (x * 3).sum().backward()
        XCTAssertEqual(x.grad!.scalars, [3, 3])
    }

    func testPostAccumulateHookRunsAfterGradIsStored() {
        let w = Tensor([1, 2, 3], requiresGrad: true)
        var observed: [[Float]] = []
        w.registerPostAccumulateGradHook { t in observed.append(t.grad!.scalars) }
        (w * w).sum().backward()
        (w * 2).sum().backward()
        XCTAssertEqual(observed, [[2, 4, 6], [4, 6, 8]])
    }

    enum Cube: CustomFunction {
        static func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> Tensor {
            ctx.saveForBackward(inputs[0])
            return inputs[0] * inputs[0] * inputs[0]
        }
        static func backward(_ ctx: FunctionContext, _ gradOutput: Tensor) -> [Tensor?] {
            let x = ctx.savedTensors[0]
            return [gradOutput * x * x * 3]
        }
    }

    /// Deliberately wrong backward: gradcheck must catch it.
    enum WrongSquare: CustomFunction {
        static func forward(_ ctx: FunctionContext, _ inputs: [Tensor]) -> Tensor {
            ctx.saveForBackward(inputs[0])
            return inputs[0] * inputs[0]
        }
        static func backward(_ ctx: FunctionContext, _ gradOutput: Tensor) -> [Tensor?] {
            [gradOutput * ctx.savedTensors[0]]
        }
    }

    func testCustomFunctionIsDifferentiableAndChecked() throws {
        let x = Tensor([0.5, -1.25, 2], dtype: .float64, requiresGrad: true)
        let y = Cube.apply(x)
        XCTAssertEqual(y.gradFnName, "CubeBackward")
        XCTAssertEqual(y.doubleScalars, [0.125, -1.953125, 8])
        y.sum().backward()
        XCTAssertEqual(x.grad!.doubleScalars, [0.75, 4.6875, 12])
        XCTAssertTrue(try gradcheck({ Cube.apply($0[0]).sin() }, inputs: [x]))
        XCTAssertThrowsError(try gradcheck({ WrongSquare.apply($0[0]) }, inputs: [x])) { error in
            XCTAssertTrue("\(error)".contains("finite differences"), "\(error)")
        }
    }

    func testGradcheckRejectsFloat32Inputs() {
        let x = Tensor([1, 2], requiresGrad: true)
        XCTAssertThrowsError(try gradcheck({ $0[0].exp() }, inputs: [x]))
    }

    func testDoubleBackwardGivesSecondDerivatives() throws {
        let x = Tensor([2, -1], dtype: .float64, requiresGrad: true)
        let y = (x * x * x).sum()
        let g = try grad(of: [y], wrt: [x], createGraph: true)[0]!
        XCTAssertEqual(g.doubleScalars, [12, 3])
        XCTAssertTrue(g.requiresGrad)
        g.sum().backward()
        XCTAssertEqual(x.grad!.doubleScalars, [12, -6])

        // Through matmul and a reduction: the Hessian of sum((A x)^2) is 2 AᵀA.
        let a = Tensor([1, 2, 3, 4], shape: [2, 2], dtype: .float64)
        let v = Tensor([0.5, -1], dtype: .float64, requiresGrad: true)
        let f = a.matmul(v).pow(2).sum()
        let gv = try grad(of: [f], wrt: [v], createGraph: true)[0]!
        let hessianRow0 = try grad(of: [gv[0]], wrt: [v])[0]!
        XCTAssertEqual(hessianRow0.doubleScalars, [20, 28])
    }

    func testBackwardWithCreateGraphRecordsLeafGradients() {
        let x = Tensor([3], dtype: .float64, requiresGrad: true)
        (x * x * x).sum().backward(createGraph: true)
        let g = x.grad!
        XCTAssertTrue(g.requiresGrad)
        x.grad = nil
        g.sum().backward()
        XCTAssertEqual(x.grad!.doubleScalars, [18])
    }

    func testUnusedInputsGetNoGradient() throws {
        let x = Tensor([1], requiresGrad: true), unused = Tensor([1], requiresGrad: true)
        let grads = try grad(of: [(x * 2).sum()], wrt: [x, unused])
        XCTAssertEqual(grads[0]!.scalars, [2])
        XCTAssertNil(grads[1])
        XCTAssertNil(x.grad, "grad(of:wrt:) must not accumulate into .grad")
    }

    func testDeepGraphsNeitherOverflowTheStackNorLeak() throws {
        try skipOnEmulatedCPUs()
        let nodesBefore = MemoryStats.liveGraphNodes
        let x = Tensor([1], requiresGrad: true)
        var y = x
        for _ in 0..<200_000 { y = y * 1 }
        y.sum().backward()
        XCTAssertEqual(x.grad!.scalars, [1])
        // Forward-only graph of the same depth, released without backward.
        var z = x
        for _ in 0..<200_000 { z = z + 0 }
        z = Tensor([0])
        y = z
        XCTAssertEqual(MemoryStats.liveGraphNodes, nodesBefore)
    }
}

/// A value shared with another thread under a lock.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
