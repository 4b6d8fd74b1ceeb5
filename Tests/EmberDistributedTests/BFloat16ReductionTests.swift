import Ember
import EmberDistributed
import XCTest

/// Gradients exchanged in bfloat16 (`DataParallel(reduceDtype: .bfloat16)`).
final class BFloat16ReductionTests: XCTestCase {
    func input(_ rank: Int) -> Tensor { Tensor([Float(rank) + 0.3, -1.7, 2.9], shape: [1, 3]) }

    func localGradient(_ rank: Int) -> [Float] {
        let m = Linear(inFeatures: 3, outFeatures: 2, generator: Generator(seed: 5))
        (m(input(rank)) * Tensor([1.1, -0.37])).sum().backward()
        return m.weight.grad!.scalars
    }

    func reduced(world size: Int) throws -> ResultBox<[Float]> {
        let grads = ResultBox<[Float]>()
        try LocalWorld(size: size, timeout: 20).run { comm in
            let model = Linear(inFeatures: 3, outFeatures: 2, generator: Generator(seed: 5))
            let ddp = try DataParallel(model, communicator: comm, reduceDtype: .bfloat16)
            XCTAssertEqual(ddp.reduceDtype, .bfloat16)
            (try ddp(self.input(comm.rank)) * Tensor([1.1, -0.37])).sum().backward()
            grads.set(comm.rank, model.weight.grad!.scalars)
        }
        return grads
    }

    func testTwoRanksRoundEachHalvedGradientAndTheirSum() throws {
        let (g0, g1) = (localGradient(0), localGradient(1))
        // Born halved (a power-of-two world), rounded to bfloat16, summed in float32, rounded again.
        let want = zip(g0, g1).map { BFloat16.rounded(BFloat16.rounded($0 / 2) + BFloat16.rounded($1 / 2)) }
        let grads = try reduced(world: 2)
        XCTAssertEqual(grads.get(0), want)
        XCTAssertEqual(grads.get(1), want)
        XCTAssertNotEqual(want, zip(g0, g1).map { ($0 + $1) / 2 }, "the inputs are chosen so that bfloat16 shows")
    }

    func testThreeRanksDivideTheRoundedSumAfterwards() throws {
        let g = (0..<3).map(localGradient)
        let grads = try reduced(world: 3)
        for i in g[0].indices {
            let exact = (g[0][i] + g[1][i] + g[2][i]) / 3
            XCTAssertEqual(grads.get(0)![i], grads.get(2)![i])
            XCTAssertEqual(grads.get(0)![i], exact, accuracy: abs(exact) * 3 * 0.0079 + 1e-6, "within three bfloat16 roundings")
        }
    }

    func testASharedStepAndBFloat16GradientsAreRefusedByName() throws {
        try LocalWorld(size: 2, timeout: 20).run { comm in
            XCTAssertThrowsError(try DataParallel(Linear(inFeatures: 2, outFeatures: 2), communicator: comm, shardOptimizerStep: true,
                                                  reduceDtype: .bfloat16)) { XCTAssertTrue("\($0)".contains("sharded"), "\($0)") }
        }
    }
}
