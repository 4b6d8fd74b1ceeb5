import XCTest
@testable import Ember

/// `Optimizer.step(slices:)` (what each rank of a sharded data-parallel step runs) must update
/// every element exactly as `step()` does, and leave the same state.
final class SlicedStepTests: XCTestCase {
    static let shapes = [[5, 7], [3], [1], [4, 4]]

    /// Each optimizer configuration, built over the given parameters.
    static let optimizers: [(String, ([Tensor]) -> Optimizer)] = [
        ("sgd", { SGD(parameters: $0, learningRate: 0.1) }),
        ("sgd momentum wd", { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) }),
        ("sgd nesterov", { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true) }),
        ("adam", { Adam(parameters: $0, learningRate: 0.01) }),
        ("adam l2", { Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.1) }),
        ("adam amsgrad", { Adam(parameters: $0, learningRate: 0.01, amsgrad: true) }),
        ("adamw", { AdamW(parameters: $0, learningRate: 0.01) }),
        ("rmsprop centered momentum", { RMSprop(parameters: $0, learningRate: 0.01, momentum: 0.5, centered: true) }),
        ("adagrad", { Adagrad(parameters: $0, learningRate: 0.1, lrDecay: 0.01, initialAccumulatorValue: 0.1) }),
    ]

    func params(_ seed: UInt64) -> [Tensor] {
        let g = Generator(seed: seed)
        return Self.shapes.map { Tensor.randn($0, generator: g) }
    }

    /// Rank `rank` of `ranks`' contiguous piece of each parameter (nil when empty).
    func piece(_ rank: Int, of ranks: Int, _ count: Int) -> Range<Int>? {
        let size = (count + ranks - 1) / ranks
        let r = min(rank * size, count)..<min((rank + 1) * size, count)
        return r.isEmpty ? nil : r
    }

    /// Three optimizers over the same parameters, each stepping its own piece of every
    /// parameter (what the ranks of a sharded step do), update exactly as one whole step does;
    /// each one keeps state for its pieces only, equal to the whole step's there.
    func testSlicedStepsEqualWholeStepsForEveryOptimizer() {
        let ranks = 3
        for (name, make) in Self.optimizers {
            let a = params(1), b = params(1)
            let whole = make(a), sliced = (0..<ranks).map { _ in make(b) }
            for step in 0..<4 {
                let grads = params(UInt64(100 + step))
                for (p, g) in zip(a, grads) { p.grad = g.clone() }
                whole.step()
                for (r, opt) in sliced.enumerated() {
                    opt.step(slices: zip(b, grads).enumerated().compactMap { i, pg in
                        piece(r, of: ranks, pg.0.count).map {
                            ParameterSlice(index: i, range: $0, gradient: pg.1.reshape([pg.0.count]).flatView(offset: $0.lowerBound, shape: [$0.count]))
                        }
                    }.reversed())  // order must not matter
                }
            }
            XCTAssertEqual(a.map(\.scalars), b.map(\.scalars), "\(name): parameters")
            for (r, opt) in sliced.enumerated() {
                for (i, p) in a.enumerated() {
                    guard let mine = piece(r, of: ranks, p.count) else {
                        XCTAssertNil(opt.state[i], "\(name): rank \(r) has no piece of parameter \(i)")
                        continue
                    }
                    let want = whole.state[i]!, got = opt.state[i] ?? [:]
                    XCTAssertEqual(Set(want.keys), Set(got.keys), "\(name): rank \(r) parameter \(i) state keys")
                    for (key, t) in want {
                        guard let u = got[key] else { continue }
                        if t.shape == p.shape && mine.count < p.count {
                            XCTAssertEqual(u.shape, [mine.count], "\(name): \(key) holds only the piece")
                            XCTAssertEqual(Array(t.doubleScalars[mine]), u.doubleScalars, "\(name): rank \(r) parameter \(i) \(key)")
                        } else {
                            XCTAssertEqual(t.shape, u.shape, "\(name): \(key)")
                            XCTAssertEqual(t.doubleScalars, u.doubleScalars, "\(name): rank \(r) parameter \(i) \(key)")
                        }
                    }
                }
            }
        }
    }

    func testASliceLeavesOtherElementsAndTheirStateAlone() {
        let p = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let opt = SGD(parameters: [p], learningRate: 1, momentum: 0.5)
        opt.step(slices: [ParameterSlice(index: 0, range: 2..<4, gradient: Tensor([1, 1]))])
        XCTAssertEqual(p.scalars, [1, 2, 2, 3, 5, 6])
        XCTAssertEqual(opt.state[0]?["momentum_buffer"]?.scalars, [1, 1], "state for the slice only")
    }

    /// Whole state (loaded from a checkpoint) is cut down to the slice at the first sliced step.
    func testWholeStateIsCutDownToTheSlice() {
        let p = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let opt = SGD(parameters: [p], learningRate: 1, momentum: 0.5)
        opt.state[0] = ["momentum_buffer": Tensor([10, 20, 30, 40, 50, 60], shape: [2, 3])]
        opt.step(slices: [ParameterSlice(index: 0, range: 2..<4, gradient: Tensor([1, 1]))])
        XCTAssertEqual(opt.state[0]?["momentum_buffer"]?.scalars, [16, 21])  // 0.5 · [30, 40] + 1
        XCTAssertEqual(p.scalars, [1, 2, -13, -17, 5, 6])
    }
}
