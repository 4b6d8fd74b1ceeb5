@_spi(Checks) import Ember
import Foundation

/// The shared state of N ranks running as threads of one process.
///
/// ```swift
/// let world = LocalWorld(size: 4)
/// DispatchQueue.concurrentPerform(iterations: 4) { rank in train(world.communicator(rank)) }
/// ```
public final class LocalWorld: @unchecked Sendable {
    public let size: Int
    /// Seconds a rank waits in a collective before giving up.
    public let timeout: Double
    private let condition = NSCondition()
    private var arrived = 0, generation = 0
    private var broken: String?
    let slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let gathered: UnsafeMutablePointer<[Double]>
    private var communicators: [LocalCommunicator] = []

    public init(size: Int, timeout: Double = 300) {
        require(size > 0, "a world needs at least one rank")
        self.size = size
        self.timeout = timeout
        slots = .allocate(capacity: size)
        slots.initialize(repeating: nil, count: size)
        gathered = .allocate(capacity: size)
        gathered.initialize(repeating: [], count: size)
        communicators = (0..<size).map { LocalCommunicator(rank: $0, world: self) }
        // Unless the program chose a thread count, the ranks share the cores rather than each
        // taking them all.
        if size > 1 { suggestNumThreads(ProcessInfo.processInfo.activeProcessorCount / size) }
    }

    deinit {
        slots.deallocate()
        gathered.deinitialize(count: size)
        gathered.deallocate()
    }

    /// The communicator of `rank`.
    public func communicator(_ rank: Int) -> LocalCommunicator { communicators[rank] }

    /// Waits until every rank has arrived; throws (on every rank) once any rank has timed out.
    func barrier(rank: Int, operation: String) throws {
        condition.lock()
        defer { condition.unlock() }
        if let broken { throw CommunicatorError.mismatch(broken) }
        let myGeneration = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
            return
        }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while generation == myGeneration {
            if let broken { throw CommunicatorError.mismatch(broken) }
            if !condition.wait(until: deadline) && generation == myGeneration {
                let error = CommunicatorError.timeout(rank: rank, operation: operation, seconds: timeout)
                broken = "\(error)"
                condition.broadcast()
                throw error
            }
        }
    }
}

/// One rank of a `LocalWorld`. Collectives run on a per-rank serial queue, so asynchronous
/// allreduces overlap the caller's work and every rank issues them in the same order.
public final class LocalCommunicator: SerialQueueCommunicator, @unchecked Sendable {
    public let rank: Int
    unowned let world: LocalWorld
    let queue: DispatchQueue

    init(rank: Int, world: LocalWorld) {
        self.rank = rank
        self.world = world
        queue = DispatchQueue(label: "ember.local-comm.\(rank)")
    }

    public var worldSize: Int { world.size }
    public var backendName: String { "local" }

    func reduce<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {
        world.slots[rank] = UnsafeMutableRawPointer(buffer)
        try world.barrier(rank: rank, operation: "allreduce(\(op.rawValue), \(count) values)")
        // Every rank reduces in rank order, so all ranks get bitwise identical results.
        let result = UnsafeMutablePointer<T>.allocate(capacity: count)
        defer { result.deallocate() }
        result.update(from: world.slots[0]!.assumingMemoryBound(to: T.self), count: count)
        for r in 1..<world.size {
            ReduceOp.accumulate(op, into: result, from: world.slots[r]!.assumingMemoryBound(to: T.self), count: count)
        }
        if op == .average { ReduceOp.average(result, count: count, world: world.size) }
        // Nobody may overwrite a buffer before everyone has read it.
        try world.barrier(rank: rank, operation: "allreduce(\(op.rawValue))")
        buffer.update(from: result, count: count)
    }

    /// The whole buffer is reduced: a superset of the shard, and the same bits as an allreduce.
    func reduceShard<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {
        try reduce(buffer, count: count, op: op)
    }

    func gatherShards<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {
        world.slots[rank] = UnsafeMutableRawPointer(buffer)
        try world.barrier(rank: rank, operation: "allgather of shards (\(count) values)")
        for r in 0..<world.size where r != rank {
            let shard = Shards.range(count: count, rank: r, world: world.size)
            (buffer + shard.lowerBound).update(from: world.slots[r]!.assumingMemoryBound(to: T.self) + shard.lowerBound, count: shard.count)
        }
        try world.barrier(rank: rank, operation: "allgather of shards")
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) throws {
        try queue.sync {
            world.slots[rank] = buffer
            try world.barrier(rank: rank, operation: "broadcast from rank \(root)")
            if rank != root { buffer.copyMemory(from: world.slots[root]!, byteCount: byteCount) }
            try world.barrier(rank: rank, operation: "broadcast from rank \(root)")
        }
    }

    public func allgather(_ values: [Double]) throws -> [[Double]] {
        try queue.sync {
            world.gathered[rank] = values
            try world.barrier(rank: rank, operation: "allgather")
            let all = (0..<world.size).map { world.gathered[$0] }
            try world.barrier(rank: rank, operation: "allgather")
            return all
        }
    }

    public func barrier() throws {
        try queue.sync { try world.barrier(rank: rank, operation: "barrier") }
    }

    public func abort(code: Int32) -> Never {
        FileHandle.standardError.write(Data("rank \(rank): aborting the local world\n".utf8))
        exit(code)
    }
}

extension LocalWorld {
    /// Runs `body` once per rank, each on its own thread (with a stack large enough for deep
    /// graphs), and returns when all have finished. Rethrows the first rank's error.
    public func run(_ body: @escaping @Sendable (LocalCommunicator) throws -> Void) throws {
        let group = DispatchGroup()
        let errors = ErrorBox()
        for rank in 0..<size {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                do { try body(communicator(rank)) } catch { errors.record(rank: rank, error) }
            }
            thread.stackSize = 64 << 20
            thread.name = "ember.rank\(rank)"
            thread.start()
        }
        group.wait()
        if let (rank, error) = errors.first { throw RankError(rank: rank, underlying: error) }
    }
}

/// An error raised on one rank of a local world.
public struct RankError: Error, CustomStringConvertible {
    public let rank: Int
    public let underlying: Error
    public var description: String { "rank \(rank): \(underlying)" }
}

private final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: (Int, Error)?
    func record(rank: Int, _ error: Error) {
        lock.lock()
        // The lowest rank's error is the one to report (rank 0 speaks for shared failures).
        if first == nil || rank < first!.0 { first = (rank, error) }
        lock.unlock()
    }
}
