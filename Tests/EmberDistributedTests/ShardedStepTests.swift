import XCTest
import Foundation
import Ember
@testable import EmberDistributed

/// `DataParallel(shardOptimizerStep: true)`: reduce-scatter, a step on each rank's shard,
/// allgather. It must train exactly like the unsharded step (the ranks of a local world reduce
/// in the same order either way, so bitwise here; under mpirun `trainer check-ddp` compares
/// against one process).
final class ShardedStepTests: XCTestCase {
    typealias Check = EquivalenceCheck

    func testShardsCoverTheBufferInOrderAndStartOnCacheLines() {
        for count in [0, 1, 15, 16, 17, 100, 1000, 4097] {
            for world in [1, 2, 3, 4, 7] {
                let shards = (0..<world).map { Shards.range(count: count, rank: $0, world: world) }
                XCTAssertEqual(shards.first?.lowerBound, 0)
                XCTAssertEqual(shards.last?.upperBound, count, "count \(count) world \(world)")
                for (a, b) in zip(shards, shards.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                for s in shards { XCTAssertTrue(s.lowerBound % 16 == 0 || s.lowerBound == count) }
            }
        }
    }

    func testReduceScatterThenAllgatherIsAnAllreduce() throws {
        let world = LocalWorld(size: 3, timeout: 20)
        let results = ResultBox<[Float]>()
        try world.run { comm in
            var values = (0..<50).map { Float($0 * (comm.rank + 1)) }
            try values.withUnsafeMutableBufferPointer { b in
                try comm.reduceScatter(b.baseAddress!, count: b.count, op: .sum)
                try comm.allgatherShards(b.baseAddress!, count: b.count)
            }
            results.set(comm.rank, values)
        }
        let want = (0..<50).map { Float($0 * 6) }
        for r in 0..<3 { XCTAssertEqual(results.get(r), want, "rank \(r)") }
    }

    /// Every rank's final weights and optimizer state (gathered), for an in-process world.
    static func train(_ kind: Check.OptimizerKind, world size: Int, sharded: Bool, bucketBytes: Int) throws -> [[[Float]]] {
        let world = LocalWorld(size: size, timeout: 60)
        let results = ResultBox<[[Float]]>()
        try world.run { comm in
            let (weights, identical) = try Check.dataParallelWeights(kind, comm: comm, bucketBytes: bucketBytes, sharded: sharded)
            XCTAssertTrue(identical, "replicas diverged")
            results.set(comm.rank, weights)
        }
        return (0..<size).map { results.get($0)! }
    }

    func testShardedStepTrainsExactlyLikeTheWholeStep() throws {
        for kind in Check.OptimizerKind.allCases {
            for n in [2, 3] {
                for bytes in [1 << 20, 256] {  // one bucket; several, with shards cutting through parameters
                    let whole = try Self.train(kind, world: n, sharded: false, bucketBytes: bytes)
                    let sharded = try Self.train(kind, world: n, sharded: true, bucketBytes: bytes)
                    for r in 0..<n { XCTAssertEqual(sharded[r], whole[0], "\(kind) world \(n) bucket \(bytes) B rank \(r): weights and state") }
                    XCTAssertLessThan(Check.maxRelativeDifference(sharded[0], Check.singleProcessWeights(kind)), 1e-5)
                }
            }
        }
    }

    /// Three data-parallel steps of the check's model (each rank its share of every global
    /// batch): every rank's weights, count of per-element optimizer state values, and the state
    /// dict assembled by `optimizerStateDict`.
    static func threeSteps(world size: Int, sharded: Bool, optimizer make: @escaping @Sendable ([Tensor]) -> Optimizer,
                           clipNorm: Double? = nil, clipValue: Double? = nil) throws -> [(weights: [Float], held: Int, whole: [String: [Float]])] {
        let world = LocalWorld(size: size, timeout: 20)
        let out = ResultBox<([Float], Int, [String: [Float]])>()
        let share = Check.globalBatch / size
        try world.run { comm in
            let model = Check.makeModel()
            let ddp = try DataParallel(model, communicator: comm, bucketCapacityBytes: 256, shardOptimizerStep: sharded)
            let opt = make(model.parameters())
            for s in 0..<3 {
                opt.zeroGrad()
                Losses.mse(try ddp(Check.data.x[s].narrow(dim: 0, start: comm.rank * share, length: share)),
                           Check.data.y[s].narrow(dim: 0, start: comm.rank * share, length: share)).backward()
                try ddp.step(opt, clipNorm: clipNorm, clipValue: clipValue)
            }
            let held = opt.state.values.flatMap { $0 }.filter { $0.key != "step" }.reduce(0) { $0 + $1.value.count }
            out.set(comm.rank, (model.parameters().flatMap(\.scalars), held, try ddp.optimizerStateDict(opt).tensors.mapValues(\.scalars)))
        }
        return (0..<size).map { out.get($0)! }
    }

    /// Norm clipping sees the joint norm of all shards (clipping that only saw this rank's shard
    /// would scale differently); value clipping applies to every element.
    func testShardedClippingMatchesClippingTheAveragedGradients() throws {
        let sgd: @Sendable ([Tensor]) -> Optimizer = { SGD(parameters: $0, learningRate: 0.5) }
        let unclipped = try Self.threeSteps(world: 2, sharded: false, optimizer: sgd)[0].weights
        for (norm, value) in [(0.05, nil), (nil, 0.01), (0.05, 0.01)] as [(Double?, Double?)] {
            let want = try Self.threeSteps(world: 2, sharded: false, optimizer: sgd, clipNorm: norm, clipValue: value)
            let got = try Self.threeSteps(world: 2, sharded: true, optimizer: sgd, clipNorm: norm, clipValue: value)
            XCTAssertEqual(got[0].weights, got[1].weights)
            XCTAssertLessThan(Check.maxRelativeDifference([got[0].weights], [want[0].weights]), 1e-6,
                              "clip norm \(String(describing: norm)) value \(String(describing: value))")
            XCTAssertGreaterThan(Check.maxRelativeDifference([want[0].weights], [unclipped]), 1e-3, "the clipping must bite for this test to mean anything")
        }
    }

    /// Each rank keeps Adam's moments for its own elements only; `optimizerStateDict` assembles
    /// the whole, equal to the unsharded run's.
    func testStateIsShardedAndAssemblesIntoAWholeStateDict() throws {
        let adam: @Sendable ([Tensor]) -> Optimizer = { Adam(parameters: $0, learningRate: 0.01) }
        let sharded = try Self.threeSteps(world: 3, sharded: true, optimizer: adam)
        let whole = try Self.threeSteps(world: 3, sharded: false, optimizer: adam)
        let moments = 2 * Check.makeModel().parameterCount
        XCTAssertEqual(whole.map(\.held), [moments, moments, moments])
        XCTAssertEqual(sharded.map(\.held).reduce(0, +), moments, "the ranks' moments add up to one whole set")
        for r in 0..<3 {
            XCTAssertLessThan(sharded[r].held, moments / 2, "rank \(r) holds only its part")
            XCTAssertEqual(sharded[r].whole, whole[0].whole, "rank \(r)'s assembled state")
        }
    }

    func testAParameterWithoutGradientsAnywhereKeepsNoneAndIsNotStepped() throws {
        let world = LocalWorld(size: 2, timeout: 20)
        try world.run { comm in
            let a = Linear(inFeatures: 2, outFeatures: 40, generator: Generator(seed: 1))
            let unused = Linear(inFeatures: 2, outFeatures: 2, generator: Generator(seed: 2))
            let model = Sequential(a, unused)
            let ddp = try DataParallel(model, communicator: comm, shardOptimizerStep: true)
            let opt = SGD(parameters: model.parameters(), learningRate: 0.1, momentum: 0.9)
            let before = unused.weight.scalars
            a(Tensor([1, 2])).sum().backward()
            try ddp.step(opt)
            XCTAssertNil(unused.weight.grad)
            XCTAssertEqual(unused.weight.scalars, before)
            XCTAssertNotNil(a.weight.grad)
        }
    }

    /// A parameter the optimizer holds outside the module (or a frozen one) is stepped whole with
    /// its local gradient, as `optimizer.step()` would, and its state stays this rank's.
    func testParametersOutsideTheModuleAreSteppedAsUnsharded() throws {
        let world = LocalWorld(size: 2, timeout: 20)
        try world.run { comm in
            let model = Check.makeModel()
            let extra = Tensor([1, 2, 3], requiresGrad: true), unused = Tensor([4, 5], requiresGrad: true)
            let ddp = try DataParallel(model, communicator: comm, shardOptimizerStep: true)
            let opt = SGD(parameters: model.parameters() + [extra, unused], learningRate: 0.1, momentum: 0.9)
            (Losses.mse(try ddp(Check.data.x[0]), Check.data.y[0]) + (extra * Float(comm.rank + 1)).sum()).backward()
            try ddp.step(opt)
            XCTAssertEqual(extra.scalars, [1, 2, 3].map { $0 - 0.1 * Float(comm.rank + 1) })
            XCTAssertEqual(unused.scalars, [4, 5])
            let state = try ddp.optimizerStateDict(opt).tensors
            let n = model.parameters().count
            XCTAssertEqual(state["\(n).momentum_buffer"]?.scalars, [Float](repeating: Float(comm.rank + 1), count: 3))
            XCTAssertNil(state["\(n + 1).momentum_buffer"])
        }
    }

    /// `synchronize()` on a sharded DataParallel still gives every rank the full average.
    func testSynchronizeStillAveragesEverything() throws {
        let world = LocalWorld(size: 2, timeout: 20)
        let grads = ResultBox<[Float]>()
        try world.run { comm in
            let model = Check.makeModel()
            let ddp = try DataParallel(model, communicator: comm, bucketCapacityBytes: 256, shardOptimizerStep: true)
            Losses.mse(try ddp(Check.data.x[comm.rank]), Check.data.y[comm.rank]).backward()
            try ddp.synchronize()
            grads.set(comm.rank, model.parameters().flatMap { $0.grad!.scalars })
        }
        let model = Check.makeModel()
        for r in 0..<2 { Losses.mse(model(Check.data.x[r]), Check.data.y[r]).backward() }
        let want = model.parameters().flatMap { $0.grad!.scalars.map { $0 / 2 } }
        XCTAssertEqual(grads.get(0), grads.get(1))
        XCTAssertLessThan(Check.maxRelativeDifference([grads.get(0)!], [want]), 1e-6)
    }
}
