import XCTest
import Foundation
import Ember
@testable import EmberDistributed

/// DataParallel's deterministic switch: the mean gradient of 12 micro-batches has the same bits
/// on 1, 2, 3 and 4 ranks (a plain allreduce of float gradients does not promise that), and
/// they are the bits of one process accumulating the micro-batches in order.
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
        // Bitwise what one process gets accumulating the 12 micro-batches' gradients in order.
        do {
            let g = Generator(seed: 3)
            let model = Sequential(Linear(inFeatures: 7, outFeatures: 16, generator: g), Tanh(), Linear(inFeatures: 16, outFeatures: 3, generator: g))
            let data = Tensor.randn([48, 7], generator: Generator(seed: 4)), target = Tensor.randn([48, 3], generator: Generator(seed: 5))
            var sums: [[Float]] = []
            for i in 0..<12 {
                for p in model.parameters() { p.grad = nil }
                Losses.mse(model(data.narrow(dim: 0, start: i * 4, length: 4)), target.narrow(dim: 0, start: i * 4, length: 4)).backward()
                let grads = model.parameters().map { $0.grad!.scalars }
                sums = sums.isEmpty ? grads : zip(sums, grads).map { a, b in zip(a, b).map { $0 + $1 } }
            }
            XCTAssertEqual(one, sums.map { $0.map { $0 / 12 } })
        }
        // And it is the mean gradient (to float rounding) of the 48 samples.
        let g = Generator(seed: 3)
        let model = Sequential(Linear(inFeatures: 7, outFeatures: 16, generator: g), Tanh(), Linear(inFeatures: 16, outFeatures: 3, generator: g))
        Losses.mse(model(Tensor.randn([48, 7], generator: Generator(seed: 4))), Tensor.randn([48, 3], generator: Generator(seed: 5))).backward()
        for (a, b) in zip(one, model.parameters().map { $0.grad!.scalars }) {
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(y))) }
        }
    }
}

/// `Communicator.orderedSum`: one process's left-to-right sum of every rank's terms, whatever
/// the number of ranks holding them.
final class OrderedSumTests: XCTestCase {
    /// 12 terms of mixed magnitudes (the order of additions shows in the bits), 1,037 values (no
    /// multiple of a shard's cache lines).
    static let count = 1037
    static func term(_ j: Int) -> [Float] {
        (0..<count).map { i in Float((i * 7919 + j * 104_729) % 2003) * 1e-3 - 1 + (j % 3 == 0 ? 3e4 : 0) * Float(j % 2 == 0 ? 1 : -1) }
    }

    /// `comm.orderedSum` of `terms`, through buffers that live as long as the call.
    static func orderedSum(_ terms: [[Float]], _ comm: Communicator) throws -> [Float] {
        let pointers = terms.map { t in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            p.initialize(from: t, count: count)
            return p
        }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { (pointers + [out]).forEach { $0.deallocate() } }
        try comm.orderedSum(pointers, count: count, into: out)
        return Array(UnsafeBufferPointer(start: out, count: count))
    }

    func sum(world n: Int) throws -> [Float] {
        let results = ResultBox<[Float]>()
        try LocalWorld(size: n, timeout: 60).run { comm in
            let perRank = 12 / n
            results.set(comm.rank, try Self.orderedSum((0..<perRank).map { Self.term(comm.rank * perRank + $0) }, comm))
        }
        let all = (0..<n).map { results.get($0)! }
        XCTAssertTrue(all.allSatisfy { $0 == all[0] }, "world \(n): ranks disagree")
        return all[0]
    }

    func testEveryWorldSizeGivesTheSequentialSum() throws {
        var sequential = Self.term(0)
        for j in 1..<12 { for (i, x) in Self.term(j).enumerated() { sequential[i] += x } }
        // Another grouping of the same terms gives other bits: the test can tell orders apart.
        var pairwise = [Float](repeating: 0, count: Self.count)
        for j in stride(from: 0, to: 12, by: 2) { for i in 0..<Self.count { pairwise[i] += Self.term(j)[i] + Self.term(j + 1)[i] } }
        XCTAssertNotEqual(pairwise, sequential)
        XCTAssertEqual(try Self.orderedSum((0..<12).map { Self.term($0) }, SingleProcessCommunicator()), sequential)
        for n in [2, 3, 4, 6] { XCTAssertEqual(try sum(world: n), sequential, "world \(n)") }
    }
}
