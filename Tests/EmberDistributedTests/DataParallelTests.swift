import XCTest
import Foundation
import Ember
@testable import EmberDistributed

/// N-rank data-parallel training must equal single-process training on the same global batch.
final class DataParallelTests: XCTestCase {
    static let globalBatch = 12, steps = 20

    static func makeModel() -> Sequential {
        let g = Generator(seed: 11)
        return Sequential(Linear(inFeatures: 6, outFeatures: 16, generator: g), Tanh(),
                          Linear(inFeatures: 16, outFeatures: 8, generator: g), ReLU(),
                          Linear(inFeatures: 8, outFeatures: 3, generator: g))
    }

    static let data: (x: Tensor, y: Tensor) = {
        let g = Generator(seed: 5)
        return (Tensor.randn([steps, globalBatch, 6], generator: g), Tensor.randn([steps, globalBatch, 3], generator: g))
    }()

    enum Opt { case sgd, adam }

    static func makeOptimizer(_ kind: Opt, _ model: Module) -> Optimizer {
        switch kind {
        case .sgd: return SGD(parameters: model.parameters(), learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3)
        case .adam: return Adam(parameters: model.parameters(), learningRate: 0.01)
        }
    }

    /// The reference: one process, the whole global batch each step.
    static func trainSingle(_ kind: Opt) -> [[Float]] {
        let model = makeModel()
        let opt = makeOptimizer(kind, model)
        for s in 0..<steps {
            opt.zeroGrad()
            MSELoss()(model(data.x[s]), data.y[s]).backward()
            opt.step()
        }
        return model.parameters().map(\.scalars)
    }

    /// Every rank trains on its contiguous share of each global batch; returns each rank's final
    /// weights and whether the replicas were bitwise identical after every step.
    static func trainParallel(_ kind: Opt, world size: Int, bucketBytes: Int = 1 << 20, overlap: Bool = true,
                              microBatches: Int = 1) throws -> (weights: [[[Float]]], identical: Bool) {
        let world = LocalWorld(size: size, timeout: 60)
        let finals = ResultBox<[[Float]]>(), perStep = ResultBox<[[[Float]]]>()
        try world.run { comm in
            let model = makeModel()
            let ddp = try DataParallel(model, communicator: comm, bucketCapacityBytes: bucketBytes, overlap: overlap)
            let opt = makeOptimizer(kind, model)
            let share = globalBatch / size
            var history: [[[Float]]] = []
            for s in 0..<steps {
                opt.zeroGrad()
                let x = data.x[s].narrow(dim: 0, start: comm.rank * share, length: share)
                let y = data.y[s].narrow(dim: 0, start: comm.rank * share, length: share)
                let micro = share / microBatches
                for m in 0..<microBatches {
                    let xm = x.narrow(dim: 0, start: m * micro, length: micro), ym = y.narrow(dim: 0, start: m * micro, length: micro)
                    let step = { (MSELoss()(try ddp(xm), ym) / Float(microBatches)).backward() }
                    if m < microBatches - 1 { try ddp.noSync(step) } else { try step() }
                }
                try ddp.synchronize()
                opt.step()
                history.append(model.parameters().map(\.scalars))
            }
            finals.set(comm.rank, model.parameters().map(\.scalars))
            perStep.set(comm.rank, history)
        }
        let identical = (1..<size).allSatisfy { perStep.get($0)! == perStep.get(0)! }
        return ((0..<size).map { finals.get($0)! }, identical)
    }

    /// Largest difference in each parameter tensor relative to that tensor's largest magnitude.
    static func maxRelativeDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
        var worst: Float = 0
        for (x, y) in zip(a, b) {
            let scale = y.map(abs).max() ?? 1
            for (u, v) in zip(x, y) { worst = max(worst, abs(u - v) / scale) }
        }
        return worst
    }

    func testDataParallelEqualsSingleProcessForSGDAndAdam() throws {
        for kind in [Opt.sgd, .adam] {
            let reference = Self.trainSingle(kind)
            for n in [2, 3, 4] {
                let (weights, identical) = try Self.trainParallel(kind, world: n)
                XCTAssertTrue(identical, "\(kind) world \(n): replicas diverged")
                XCTAssertLessThan(Self.maxRelativeDifference(weights[0], reference), 1e-5, "\(kind) world \(n)")
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

    func testBucketsFollowReverseParameterOrderAndCapacity() throws {
        let model = Self.makeModel()
        let one = try DataParallel(model, communicator: SingleProcessCommunicator(), bucketCapacityBytes: 1)
        XCTAssertEqual(one.bucketSizes, model.parameters().reversed().map(\.count))
        let all = try DataParallel(Self.makeModel(), communicator: SingleProcessCommunicator(), bucketCapacityBytes: 1 << 30)
        XCTAssertEqual(all.bucketSizes, [model.parameterCount])
    }

    func testNoSyncAccumulationEqualsTheLargeBatch() throws {
        let reference = Self.trainSingle(.sgd)
        let (weights, identical) = try Self.trainParallel(.sgd, world: 2, microBatches: 3)
        XCTAssertTrue(identical)
        XCTAssertLessThan(Self.maxRelativeDifference(weights[0], reference), 1e-5)
    }

    func testMismatchedModelsFailClearlyOnEveryRank() {
        let world = LocalWorld(size: 2, timeout: 10)
        XCTAssertThrowsError(try world.run { comm in
            let model = comm.rank == 0 ? Self.makeModel() : Sequential(Linear(inFeatures: 6, outFeatures: 3))
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
