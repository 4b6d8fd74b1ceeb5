import CEmberSupport
import Ember
import Foundation

/// How an allreduce combines values.
public enum ReduceOp: String, Sendable {
    case sum, average, max, min

    /// Turns a sum over `world` ranks into their average, identically on every backend. For a
    /// power-of-two world, multiplying by the reciprocal gives the same bits as dividing and is
    /// several times faster.
    static func average<T: FloatElement>(_ values: UnsafeMutablePointer<T>, count: Int, world: Int) {
        // Callers are generic code that Swift may not specialise; dispatch to concrete types so
        // the loop is compiled for them (an unspecialised loop is ten times slower).
        let raw = UnsafeMutableRawPointer(values)
        if T.self == Float.self {
            divide(raw.assumingMemoryBound(to: Float.self), count: count, by: world)
        } else if T.self == Double.self {
            divide(raw.assumingMemoryBound(to: Double.self), count: count, by: world)
        }
    }

    /// `target[i] = target[i] ⊕ source[i]`, with ⊕ the sum for `.average` too (it divides once, at the end).
    static func accumulate<T: FloatElement>(_ op: ReduceOp, into target: UnsafeMutablePointer<T>, from source: UnsafePointer<T>, count: Int) {
        let t = UnsafeMutableRawPointer(target), s = UnsafeRawPointer(source)
        if T.self == Float.self {
            combine(op, t.assumingMemoryBound(to: Float.self), s.assumingMemoryBound(to: Float.self), count, add: ember_add_f32)
        } else if T.self == Double.self {
            combine(op, t.assumingMemoryBound(to: Double.self), s.assumingMemoryBound(to: Double.self), count, add: ember_add_f64)
        }
    }

    @inline(__always)
    private static func combine<T: FloatElement>(_ op: ReduceOp, _ target: UnsafeMutablePointer<T>, _ source: UnsafePointer<T>, _ count: Int,
                                                 add: (UnsafeMutablePointer<T>?, UnsafePointer<T>?, UnsafePointer<T>?, Int) -> Void) {
        switch op {
        // In C: Swift cannot prove the buffers apart and leaves this loop scalar.
        case .sum, .average: add(target, target, source, count)
        case .max: for i in 0..<count { target[i] = Swift.max(target[i], source[i]) }
        case .min: for i in 0..<count { target[i] = Swift.min(target[i], source[i]) }
        }
    }

    @inline(__always)
    private static func divide<T: FloatElement>(_ values: UnsafeMutablePointer<T>, count: Int, by world: Int) {
        let n = T(world)
        if world & (world - 1) == 0 {
            let scale = 1 / n
            for i in 0..<count { values[i] *= scale }
        } else {
            for i in 0..<count { values[i] /= n }
        }
    }
}

/// Collective communication between the ranks of a data-parallel job.
///
/// Every rank must call the same collectives in the same order. Implementations: `MPICommunicator`
/// (processes under mpirun/srun), `SingleProcessCommunicator` (a world of one) and
/// `LocalCommunicator` (ranks as threads of one process, for tests and `--local-ranks`).
public protocol Communicator: AnyObject, Sendable {
    var rank: Int { get }
    var worldSize: Int { get }
    /// A short name for logs ("mpi", "local", "single").
    var backendName: String { get }

    /// Combines `count` values across ranks in place; every rank ends with the same result.
    func allreduce<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws
    /// Copies `byteCount` bytes from `root` to every rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) throws
    /// Every rank's `count` doubles, in rank order.
    func allgather(_ values: [Double]) throws -> [[Double]]
    func barrier() throws
    /// Starts an allreduce and returns at once; `wait()` on the request before using the buffer.
    func allreduceAsync<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) -> CommRequest
    /// Ends the whole job at once (all ranks), after a fatal error on this one.
    func abort(code: Int32) -> Never

    /// Reduces `count` values across ranks so that this rank's shard of the buffer
    /// (`shard(of:)`) holds the result; the rest of the buffer is left undefined. Followed by
    /// `allgatherShards` it is an allreduce; between the two, each rank can work on its shard
    /// alone (a sharded optimizer step).
    func reduceScatter<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws
    /// Starts a `reduceScatter` and returns at once, like `allreduceAsync`.
    func reduceScatterAsync<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) -> CommRequest
    /// Fills every rank's shard of the buffer with that rank's values, in place.
    func allgatherShards<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws
    /// A zeroed buffer for repeated reductions (DataParallel's buckets). Collective: every rank
    /// asks for the same size. `MPICommunicator` places it in memory the ranks of one node
    /// share, so its collectives read other ranks' values in place.
    func reductionBuffer(count: Int, dtype: DType) throws -> Tensor
    /// Sums float32 buffers held across the ranks in one global order, rank 0's `terms` first
    /// (in the order given), then rank 1's, and so on, into `out` on every rank: the bits one
    /// process gets adding them all in that order, whatever the number of ranks. Every rank
    /// passes the same number of terms of `count` values; `out` is not one of them. Reads the
    /// terms in place when they and `out` are `reductionBuffer`s (same offsets on every rank).
    /// `divisor` > 1 divides the sum (each rank its shard, before the shards are gathered).
    func orderedSum(_ terms: [UnsafeMutablePointer<Float>], count: Int, into out: UnsafeMutablePointer<Float>, dividedBy divisor: Int) throws
    /// Starts a sum of `count` bfloat16 values (their bits) over the ranks, in place: half the
    /// bytes of a float32 allreduce. See BFloat16Reduction.swift.
    func allreduceBFloat16Async(_ buffer: UnsafeMutablePointer<UInt16>, count: Int) -> CommRequest
}

extension Communicator {
    public func reductionBuffer(count: Int, dtype: DType) throws -> Tensor { Tensor.zeros([count], dtype: dtype) }
}

/// How `reduceScatter` and `allgatherShards` split a buffer: one contiguous shard per rank, in
/// rank order, as equal as whole cache lines (16 values) allow, so shards start aligned.
public enum Shards {
    public static func range(count: Int, rank: Int, world: Int) -> Range<Int> {
        let lines = (count + 15) / 16
        let size = (lines + world - 1) / world * 16
        return min(rank * size, count)..<min((rank + 1) * size, count)
    }
}

extension Communicator {
    /// This rank's shard of a buffer of `count` values.
    public func shard(of count: Int) -> Range<Int> { Shards.range(count: count, rank: rank, world: worldSize) }
}

/// A communicator whose collectives run one at a time on its own serial queue, on top of a
/// blocking `reduce`: the queue is what lets an asynchronous allreduce run beside backward.
protocol SerialQueueCommunicator: Communicator {
    var queue: DispatchQueue { get }
    /// Reduces in place; called on `queue` only.
    func reduce<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws
    /// Reduce-scatters in place (see `reduceScatter`); called on `queue` only.
    func reduceShard<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws
    /// Gathers every rank's shard in place (see `allgatherShards`); called on `queue` only.
    func gatherShards<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws
}

extension SerialQueueCommunicator {
    public func allreduce<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {
        try queue.sync { try reduce(buffer, count: count, op: op) }
    }

    public func allreduceAsync<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) -> CommRequest {
        nonisolated(unsafe) let pointer = buffer
        return CommRequest.start(on: queue) { [self] in try reduce(pointer, count: count, op: op) }
    }

    public func reduceScatter<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {
        try queue.sync { try reduceShard(buffer, count: count, op: op) }
    }

    public func reduceScatterAsync<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) -> CommRequest {
        nonisolated(unsafe) let pointer = buffer
        return CommRequest.start(on: queue) { [self] in try reduceShard(pointer, count: count, op: op) }
    }

    public func allgatherShards<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {
        try queue.sync { try gatherShards(buffer, count: count) }
    }
}

/// A communication in flight.
public final class CommRequest: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var error: Error?
    /// When the communication began and ended (monotonic nanoseconds; 0 for requests that
    /// ran no communication), for timelines.
    public private(set) var startedAt: UInt64 = 0, finishedAt: UInt64 = 0

    public init() {}

    /// A request that has already finished.
    public static func completed(_ error: Error? = nil) -> CommRequest {
        let r = CommRequest()
        r.finish(error)
        return r
    }

    func finish(_ error: Error?) {
        self.error = error
        if startedAt != 0 { finishedAt = monotonicNanoseconds() }
        done.signal()
    }

    /// Blocks until the communication has finished; rethrows its error.
    public func wait() throws {
        done.wait()
        done.signal()  // later waits return at once
        if let error { throw error }
    }
}

extension CommRequest {
    /// Runs `body` on `queue` (a communicator's serial queue) and returns its request at once.
    static func start(on queue: DispatchQueue, _ body: @escaping @Sendable () throws -> Void) -> CommRequest {
        let request = CommRequest()
        queue.async {
            request.startedAt = monotonicNanoseconds()
            do { try body(); request.finish(nil) } catch { request.finish(error) }
        }
        return request
    }
}

/// What went wrong in a collective.
public enum CommunicatorError: Error, CustomStringConvertible {
    case timeout(rank: Int, operation: String, seconds: Double)
    case mpi(rank: Int, operation: String, code: Int32, message: String)
    case mismatch(String)

    public var description: String {
        switch self {
        case .timeout(let rank, let op, let s):
            return "rank \(rank): \(op) waited more than \(Int(s)) s for the other ranks (a rank has died or is stuck)"
        case .mpi(let rank, let op, let code, let message):
            return "rank \(rank): \(op) failed with MPI error \(code): \(message)"
        case .mismatch(let why):
            return why
        }
    }
}

extension Communicator {
    /// In-place allreduce of a floating-point tensor.
    public func allreduce(_ tensor: Tensor, op: ReduceOp = .sum) throws {
        switch tensor.dtype {
        case .float32: try allreduce(tensor.mutablePointer(Float.self), count: tensor.count, op: op)
        case .float64: try allreduce(tensor.mutablePointer(Double.self), count: tensor.count, op: op)
        case .int64: throw CommunicatorError.mismatch("allreduce of an int64 tensor is not supported; convert it to float64")
        case .bfloat16: throw CommunicatorError.mismatch("allreduce of a bfloat16 tensor is not supported; convert it to float32")
        }
    }

    /// Fills every rank's shard of the tensor's first `count` elements (all by default) from that rank.
    public func allgatherShards(_ tensor: Tensor, count: Int? = nil) throws {
        let n = count ?? tensor.count
        switch tensor.dtype {
        case .float32: try allgatherShards(tensor.mutablePointer(Float.self), count: n)
        case .float64: try allgatherShards(tensor.mutablePointer(Double.self), count: n)
        case .int64: throw CommunicatorError.mismatch("allgather of an int64 tensor is not supported; convert it to float64")
        case .bfloat16: throw CommunicatorError.mismatch("allgather of a bfloat16 tensor is not supported; convert it to float32")
        }
    }

    /// In-place broadcast of a tensor from `root`.
    public func broadcast(_ tensor: Tensor, root: Int = 0) throws {
        try broadcast(tensor.dataPointer, byteCount: tensor.count * tensor.dtype.byteSize, root: root)
    }

    /// Sums doubles across ranks (exact global metrics: loss sums, correct counts, sample counts).
    public func allreduceSum(_ values: [Double]) throws -> [Double] { try allreduce(values, op: .sum) }

    /// The elementwise maximum over ranks.
    public func allreduceMax(_ values: [Double]) throws -> [Double] { try allreduce(values, op: .max) }

    private func allreduce(_ values: [Double], op: ReduceOp) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBufferPointer { try allreduce($0.baseAddress!, count: $0.count, op: op) }
        return v
    }

    /// Rank `root`'s values on every rank (used to broadcast the coordinator's decisions).
    public func broadcast(_ values: [Double], root: Int = 0) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBytes { try broadcast($0.baseAddress!, byteCount: $0.count, root: root) }
        return v
    }

    /// Rank `root`'s text on every rank (its length first, then its bytes).
    public func broadcast(text: String, root: Int = 0) throws -> String {
        let count = Int(try broadcast([Double(text.utf8.count)], root: root)[0])
        guard count > 0 else { return "" }
        var bytes = rank == root ? Array(text.utf8) : [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try broadcast($0.baseAddress!, byteCount: count, root: root) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A world of one: collectives are no-ops (average and sum leave values unchanged).
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public var backendName: String { "single" }
    public func allreduce<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {}
    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) throws {}
    public func allgather(_ values: [Double]) throws -> [[Double]] { [values] }
    public func barrier() throws {}
    public func allreduceAsync<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) -> CommRequest {
        .completed()
    }
    public func abort(code: Int32) -> Never { exit(code) }
    public func reduceScatter<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {}
    public func reduceScatterAsync<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) -> CommRequest {
        .completed()
    }
    public func allgatherShards<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {}
}
