import XCTest
import Foundation
import Ember
@testable import EmberDistributed

/// N-rank data-parallel training must equal single-process training on the same global batch.
final class DataParallelTests: XCTestCase {
    typealias Check = EquivalenceCheck

    /// Every rank's final weights and whether replicas stayed identical, for an in-process world.
    static func trainParallel(_ kind: Check.OptimizerKind, world size: Int, bucketBytes: Int = 1 << 20, overlap: Bool = true,
                              microBatches: Int = 1) throws -> (weights: [[[Float]]], identical: Bool) {
        let world = LocalWorld(size: size, timeout: 60)
        let results = ResultBox<([[Float]], Bool)>()
        try world.run { comm in
            results.set(comm.rank, try Check.dataParallelWeights(kind, comm: comm, bucketBytes: bucketBytes, overlap: overlap,
                                                                 microBatches: microBatches))
        }
        let all = (0..<size).map { results.get($0)! }
        return (all.map(\.0), all.allSatisfy(\.1) && all.allSatisfy { $0.0 == all[0].0 })
    }

    func testDataParallelEqualsSingleProcessForSGDAndAdam() throws {
        for kind in Check.OptimizerKind.allCases {
            let reference = Check.singleProcessWeights(kind)
            for n in [2, 3, 4] {
                let (weights, identical) = try Self.trainParallel(kind, world: n)
                XCTAssertTrue(identical, "\(kind) world \(n): replicas diverged")
                XCTAssertLessThan(Check.maxRelativeDifference(weights[0], reference), 1e-5, "\(kind) world \(n)")
            }
        }
    }

    func testAnyBucketCapacityAndOverlapGiveTheSameResult() throws {
        let base = try Self.trainParallel(.sgd, world: 2).weights[0]
        for (bytes, overlap) in [(1, true), (64 * 4, true), (1 << 30, true), (1 << 20, false)] {
            let other = try Self.trainParallel(.sgd, world: 2, bucketBytes: bytes, overlap: overlap).weights[0]
            XCTAssertEqual(other, base, "bucket capacity \(bytes), overlap \(overlap)")
        }
    }

    func testNoSyncAccumulationEqualsTheLargeBatch() throws {
        let reference = Check.singleProcessWeights(.sgd)
        let (weights, identical) = try Self.trainParallel(.sgd, world: 2, microBatches: 3)
        XCTAssertTrue(identical)
        XCTAssertLessThan(Check.maxRelativeDifference(weights[0], reference), 1e-5)
    }

    func testBucketsFollowReverseParameterOrderAndCapacity() throws {
        let model = Check.makeModel()
        let one = try DataParallel(model, communicator: SingleProcessCommunicator(), bucketCapacityBytes: 1)
        XCTAssertEqual(one.bucketSizes, model.parameters().reversed().map(\.count))
        let all = try DataParallel(Check.makeModel(), communicator: SingleProcessCommunicator(), bucketCapacityBytes: 1 << 30)
        XCTAssertEqual(all.bucketSizes, [model.parameterCount])
    }

    func testMismatchedModelsFailClearlyOnEveryRank() {
        let world = LocalWorld(size: 2, timeout: 10)
        XCTAssertThrowsError(try world.run { comm in
            let model = comm.rank == 0 ? Check.makeModel() : Sequential(Linear(inFeatures: 6, outFeatures: 3))
            _ = try DataParallel(model, communicator: comm)
        }) { error in
            XCTAssertTrue("\(error)".contains("different parameter names or shapes"), "\(error)")
        }
    }

    func testParametersWithoutGradientsOnSomeRanksDoNotHang() throws {
        let world = LocalWorld(size: 2, timeout: 20)
        let grads = ResultBox<[Float]>()
        try world.run { comm in
            let a = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 1))
            let b = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 2))
            let model = Sequential(a, b)
            let ddp = try DataParallel(model, communicator: comm, bucketCapacityBytes: 1)
            // Rank 1 never uses `b`; rank 0 does.
            let x = Tensor([1, 2])
            let out = comm.rank == 0 ? b(a(x)) : a(x)
            out.sum().backward()
            try ddp.synchronize()
            grads.set(comm.rank, b.weight.grad!.scalars)
            _ = ddp
        }
        XCTAssertEqual(grads.get(0), grads.get(1), "every rank ends with the same averaged gradient")
    }

    /// Wrapping a model again and releasing the old wrapper leaves the new one intact (the old
    /// one must not take the gradient slots, or their prescaling, with it).
    func testRewrappingAModelStillAverages() throws {
        @Sendable func input(_ rank: Int) -> Tensor { Tensor([Float(rank + 1), 2]) }
        func localGradient(_ rank: Int) -> [Float] {
            let m = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 1))
            m(input(rank)).sum().backward()
            return m.weight.grad!.scalars
        }
        let want = zip(localGradient(0), localGradient(1)).map { ($0 + $1) / 2 }
        let world = LocalWorld(size: 2, timeout: 20)
        let grads = ResultBox<[Float]>()
        try world.run { comm in
            let model = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 1))
            var first: DataParallel? = try DataParallel(model, communicator: comm)
            let second = try DataParallel(model, communicator: comm)
            XCTAssertNotNil(first)
            first = nil
            model(input(comm.rank)).sum().backward()
            try second.synchronize()
            grads.set(comm.rank, model.weight.grad!.scalars)
        }
        XCTAssertEqual(grads.get(0), want)
        XCTAssertEqual(grads.get(1), want)
    }

    func testInitialParametersComeFromRankZero() throws {
        let world = LocalWorld(size: 3)
        let weights = ResultBox<[Float]>()
        try world.run { comm in
            let model = Linear(inFeatures: 3, outFeatures: 2, generator: Generator(seed: UInt64(comm.rank)))
            _ = try DataParallel(model, communicator: comm)
            weights.set(comm.rank, model.weight.scalars)
        }
        XCTAssertEqual(weights.get(1), weights.get(0))
        XCTAssertEqual(weights.get(2), weights.get(0))
        XCTAssertEqual(weights.get(0), Linear(inFeatures: 3, outFeatures: 2, generator: Generator(seed: 0)).weight.scalars)
    }
}
