import XCTest
import Foundation
import Ember
@testable import EmberDistributed

/// PyTorch's DDP loop (forward through the wrapper, `backward()`, `optimizer.step()`, nothing
/// else) averages gradients by itself: no silent drift between replicas.
final class PyTorchLoopTests: XCTestCase {
    typealias Check = EquivalenceCheck

    func testPlainLoopEqualsSingleProcessTraining() throws {
        for kind in Check.OptimizerKind.allCases {
            let reference = Check.singleProcessWeights(kind)
            for (n, sharded) in [(2, false), (3, false), (2, true), (4, true)] {
                let world = LocalWorld(size: n, timeout: 60)
                let results = ResultBox<([[Float]], Bool)>()
                try world.run { comm in
                    results.set(comm.rank, try Check.dataParallelWeights(kind, comm: comm, bucketBytes: 512, sharded: sharded, loop: .pytorch))
                }
                let all = (0..<n).map { results.get($0)! }
                XCTAssertTrue(all.allSatisfy(\.1) && all.allSatisfy { $0.0 == all[0].0 }, "\(kind) world \(n) sharded \(sharded): replicas diverged")
                XCTAssertLessThan(Check.maxRelativeDifference(all[0].0, reference), 1e-5, "\(kind) world \(n) sharded \(sharded)")
            }
        }
    }

    /// When backward returns, `.grad` already holds the average over the ranks.
    func testGradientsAreAveragedWhenBackwardReturns() throws {
        @Sendable func input(_ rank: Int) -> Tensor { Tensor([Float(rank + 1), 2]) }
        let local: [[Float]] = (0..<2).map { rank in
            let m = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 1))
            m(input(rank)).sum().backward()
            return m.weight.grad!.scalars
        }
        let want = zip(local[0], local[1]).map { ($0 + $1) / 2 }
        for overlap in [true, false] {
            let grads = ResultBox<[Float]>()
            try LocalWorld(size: 2, timeout: 20).run { comm in
                let model = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 1))
                let ddp = try DataParallel(model, communicator: comm, overlap: overlap)
                try ddp(input(comm.rank)).sum().backward()
                grads.set(comm.rank, model.weight.grad!.scalars)
                try ddp.synchronize()  // after backward's own: changes nothing
                XCTAssertEqual(model.weight.grad!.scalars, grads.get(comm.rank))
            }
            XCTAssertEqual(grads.get(0), want, "overlap \(overlap)")
            XCTAssertEqual(grads.get(1), want, "overlap \(overlap)")
        }
    }

    /// A sharded step asked of an optimizer that does not declare its update elementwise is
    /// refused (a per-tensor norm would be computed on each shard alone).
    func testShardedStepRefusesAnOptimizerThatIsNotElementwise() throws {
        final class TensorNormSGD: Optimizer {
            init(_ ps: [Tensor]) { super.init(paramGroups: [ParamGroup(params: ps, learningRate: 0.1)]) }
            override func update(parameter p: Tensor, gradient g: Tensor, state: inout [String: Tensor], group: ParamGroup) {
                p.copy_(p - g / g.norm() * Float(group.learningRate))
            }
        }
        XCTAssertThrowsError(try LocalWorld(size: 2, timeout: 20).run { comm in
            let model = Check.makeModel()
            let ddp = try DataParallel(model, communicator: comm, shardOptimizerStep: true)
            let opt = TensorNormSGD(model.parameters())
            Losses.mse(try ddp(Check.data.x[0]), Check.data.y[0]).backward()
            try ddp.step(opt)
        }) { error in
            XCTAssertTrue("\(error)".contains("does not declare its update elementwise"), "\(error)")
        }
    }
}

extension Tensor {
    /// The 2-norm of all elements (for the test optimizer above).
    fileprivate func norm() -> Tensor { (self * self).sum().sqrt() }
}
