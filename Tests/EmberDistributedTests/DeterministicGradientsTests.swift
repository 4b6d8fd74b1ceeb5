import XCTest
import Foundation
import Ember
@testable import EmberDistributed

/// DataParallel's deterministic switch: the mean gradient of 12 micro-batches has the same bits
/// on 1, 2, 3 and 4 ranks (a plain allreduce of float gradients does not promise that).
final class DeterministicGradientsTests: XCTestCase {
    func gradients(world n: Int) throws -> [[Float]] {
        let results = ResultBox<[[Float]]>()
        try LocalWorld(size: n, timeout: 60).run { comm in
            let g = Generator(seed: 3)
            let model = Sequential(Linear(inFeatures: 7, outFeatures: 16, generator: g), Tanh(), Linear(inFeatures: 16, outFeatures: 3, generator: g))
            let ddp = try DataParallel(model, communicator: comm)
            let exact = try ddp.deterministicGradients()
            let data = Tensor.randn([48, 7], generator: Generator(seed: 4)), target = Tensor.randn([48, 3], generator: Generator(seed: 5))
            let perRank = 12 / n
            for k in 0..<perRank {
                let i = comm.rank * perRank + k
                try exact.microBatch(k) {
                    Losses.mse(try ddp(data.narrow(dim: 0, start: i * 4, length: 4)), target.narrow(dim: 0, start: i * 4, length: 4)).backward()
                }
            }
            try exact.reduce(microBatches: 12)
            results.set(comm.rank, model.parameters().map { $0.grad!.scalars })
        }
        let all = (0..<n).map { results.get($0)! }
        XCTAssertTrue(all.allSatisfy { $0 == all[0] }, "world \(n): ranks disagree")
        return all[0]
    }

    func testTheMeanHasTheSameBitsOnAnyWorldSize() throws {
        let one = try gradients(world: 1)
        for n in [2, 3, 4] { XCTAssertEqual(try gradients(world: n), one, "world \(n)") }
        // And it is the mean gradient (to float rounding) of the 48 samples.
        let g = Generator(seed: 3)
        let model = Sequential(Linear(inFeatures: 7, outFeatures: 16, generator: g), Tanh(), Linear(inFeatures: 16, outFeatures: 3, generator: g))
        Losses.mse(model(Tensor.randn([48, 7], generator: Generator(seed: 4))), Tensor.randn([48, 3], generator: Generator(seed: 5))).backward()
        for (a, b) in zip(one, model.parameters().map { $0.grad!.scalars }) {
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(y))) }
        }
    }
}
