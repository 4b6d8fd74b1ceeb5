import CEmberSupport
import CMPI
@_spi(Checks) import Ember

/// `Communicator.orderedSum`: the one reduction whose bits do not depend on how its terms are
/// spread over the ranks. Each rank owns a shard of the elements and adds, for that shard,
/// every rank's terms in the global order (rank by rank, each rank's in its order), then the
/// shards are gathered: the per-element additions are the same ones a single process makes.
enum OrderedSum {
    /// `out = (terms[0] + terms[1] + …) / divisor`, left to right, element by element (zero for
    /// no terms).
    static func add(_ terms: [UnsafeMutablePointer<Float>], count: Int, into out: UnsafeMutablePointer<Float>, dividedBy divisor: Int = 1) {
        guard !terms.isEmpty else { return out.update(repeating: 0, count: count) }
        let inputs = terms.map { Optional($0) }
        ember_sum_f32(out, inputs, Int32(inputs.count), count)
        if divisor > 1 { ReduceOp.average(out, count: count, world: divisor) }
    }
}

extension Communicator {
    /// `orderedSum` without a divisor.
    public func orderedSum(_ terms: [UnsafeMutablePointer<Float>], count: Int, into out: UnsafeMutablePointer<Float>) throws {
        try orderedSum(terms, count: count, into: out, dividedBy: 1)
    }
}

extension Communicator {
    /// Any communicator: each rank's terms broadcast in turn and added in order. Correct, not
    /// fast; the library's communicators override it.
    public func orderedSum(_ terms: [UnsafeMutablePointer<Float>], count: Int, into out: UnsafeMutablePointer<Float>, dividedBy divisor: Int) throws {
        guard worldSize > 1 else { return OrderedSum.add(terms, count: count, into: out, dividedBy: divisor) }
        let incoming = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
        defer { incoming.deallocate() }
        var first = true
        for root in 0..<worldSize {
            for j in terms.indices {
                if root == rank { incoming.update(from: terms[j], count: count) }
                try broadcast(UnsafeMutableRawPointer(incoming), byteCount: count * MemoryLayout<Float>.stride, root: root)
                if first { out.update(from: incoming, count: count) } else { ember_add_f32(out, out, incoming, count) }
                first = false
            }
        }
        if first { out.update(repeating: 0, count: count) }
        if divisor > 1 { ReduceOp.average(out, count: count, world: divisor) }
    }
}

extension LocalCommunicator {
    /// Threads read each other's terms where they are.
    public func orderedSum(_ terms: [UnsafeMutablePointer<Float>], count: Int, into out: UnsafeMutablePointer<Float>, dividedBy divisor: Int) throws {
        try queue.sync {
            let list = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: Swift.max(terms.count, 1))
            defer { list.deallocate() }
            list.initialize(from: terms, count: terms.count)
            world.slots[rank] = UnsafeMutableRawPointer(list)
            try world.barrier(rank: rank, operation: "ordered sum (\(terms.count) terms of \(count) values)")
            let shard = Shards.range(count: count, rank: rank, world: world.size)
            let inputs = (0..<world.size).flatMap { r -> [UnsafeMutablePointer<Float>] in
                let theirs = world.slots[r]!.assumingMemoryBound(to: UnsafeMutablePointer<Float>.self)
                return (0..<terms.count).map { theirs[$0] + shard.lowerBound }
            }
            OrderedSum.add(inputs, count: shard.count, into: out + shard.lowerBound, dividedBy: divisor)
            // Every rank has read the lists and the terms before any list is freed.
            try world.barrier(rank: rank, operation: "ordered sum")
            try gatherShards(out, count: count)
        }
    }
}

extension MPICommunicator {
    /// On one node, straight from every rank's shared segments; otherwise every rank sends each
    /// of its terms' shards to their owners (one `MPI_Alltoallv` per term), owners add, and the
    /// shards are gathered. Terms per rank multiply the bytes sent, unlike an allreduce.
    public func orderedSum(_ terms: [UnsafeMutablePointer<Float>], count: Int, into out: UnsafeMutablePointer<Float>, dividedBy divisor: Int) throws {
        guard worldSize > 1 else { return OrderedSum.add(terms, count: count, into: out, dividedBy: divisor) }
        try queue.sync {
            let bytes = count * MemoryLayout<Float>.stride
            if transport == .sharedMemory, let shared, let target = shared.locate(out, bytes: bytes) {
                let located = terms.compactMap { shared.locate($0, bytes: bytes) }
                if located.count == terms.count {
                    try call("ordered sum (\(terms.count) terms of \(count) values, shared memory)") {
                        shared.orderedSumShard(located, count: count, into: target, dividedBy: divisor)
                        shared.gatherShards(target.0, offset: target.1, count: count, Float.self)
                        return ember_mpi_success()
                    }
                    return
                }
            }
            require(count <= Int(Int32.max), "ordered sum of more than 2^31 values in one call")
            let n = worldSize
            let shards = (0..<n).map { Shards.range(count: count, rank: $0, world: n) }
            let mine = shards[rank]
            let received = scratch(bytes: Swift.max(mine.count * n * terms.count, 1) * MemoryLayout<Float>.stride).assumingMemoryBound(to: Float.self)
            var sendCounts = shards.map { Int32($0.count) }, sendOffsets = shards.map { Int32($0.lowerBound) }
            var receiveCounts = [Int32](repeating: Int32(mine.count), count: n)
            for (j, term) in terms.enumerated() {
                // Rank r's term j lands at position r·terms + j: the order of the sum.
                var receiveOffsets = (0..<n).map { Int32(($0 * terms.count + j) * mine.count) }
                try call("ordered sum (\(terms.count) terms of \(count) values)") {
                    MPI_Alltoallv(term, &sendCounts, &sendOffsets, ember_mpi_float(),
                                  received, &receiveCounts, &receiveOffsets, ember_mpi_float(), ember_mpi_comm_world())
                }
            }
            OrderedSum.add((0..<(n * terms.count)).map { received + $0 * mine.count }, count: mine.count, into: out + mine.lowerBound, dividedBy: divisor)
            try gatherShards(out, count: count)
        }
    }
}
