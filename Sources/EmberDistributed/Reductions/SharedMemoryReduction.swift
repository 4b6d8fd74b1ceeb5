import CEmberSupport
import CMPI
import Ember
import Foundation

/// Allreduce, reduce-scatter and allgather through memory that every rank of a one-node job maps.
///
/// Open MPI moves a message between two processes on one node by copying it into a shared queue
/// and out again. When DataParallel's buckets live in a shared segment instead
/// (`MPICommunicator.reductionBuffer`), each rank reads the other ranks' values where backward
/// wrote them: the owner of a shard sums it from every rank's segment, in rank order, then every
/// rank copies the other shards from their owners. One pass over the remote data instead of two
/// copies: a 940 KB two-rank allreduce here takes about 28 µs against Open MPI's 47. Whether
/// whole steps get faster depends on the machine and the moment (see `TransportTuner`).
/// Used on the communicator's queue only.
final class SharedMemoryReducer {
    /// One collectively allocated segment: each rank's part of it, at the same offsets.
    final class Segment {
        let window: MPI_Win
        let bases: [UnsafeMutableRawPointer]
        let byteCount: Int
        init(window: MPI_Win, bases: [UnsafeMutableRawPointer], byteCount: Int) {
            self.window = window
            self.bases = bases
            self.byteCount = byteCount
        }
    }

    let rank: Int, world: Int
    private let node: MPI_Comm
    private var counters: UnsafeMutablePointer<Int32>!
    private var epoch: Int32 = 0
    /// Pause instructions a waiting rank spends before yielding its core: few when ranks
    /// outnumber cores (four ranks on two cores ran 15% slower with long spins).
    private let spinLimit: Int
    private var segments: [Segment] = []
    /// Most bytes of segments per rank (`EMBER_SHARED_MEMORY_LIMIT`; containers often give
    /// /dev/shm only 64 MB). Buffers beyond it are ordinary memory and reduce over MPI.
    private let limit: Int
    private var allocated = 0

    /// Nil unless every rank of `comm` shares this node (and there are at least two).
    init?(comm: MPI_Comm, rank: Int, world: Int, limit: Int = .max) throws {
        guard world > 1 else { return nil }
        var node: MPI_Comm? = nil
        MPI_Comm_split_type(comm, ember_mpi_comm_type_shared(), 0, ember_mpi_info_null(), &node)
        var size: Int32 = 0
        MPI_Comm_size(node, &size)
        // Every rank computes the same answer (all on one node or not), so all return alike.
        guard Int(size) == world, let node else {
            if node != nil { MPI_Comm_free(&node) }
            return nil
        }
        self.node = node
        self.rank = rank
        self.world = world
        self.limit = limit
        spinLimit = world <= ProcessInfo.processInfo.activeProcessorCount ? 2000 : 20
        guard let barrier = try allocate(bytes: Int(EMBER_SHM_COUNTER_STRIDE) * 4 * world, counted: false) else {
            var n: MPI_Comm? = self.node
            MPI_Comm_free(&n)
            return nil
        }
        counters = barrier.bases[0].assumingMemoryBound(to: Int32.self)
    }

    /// A zeroed segment of `bytes` per rank (collective: every rank calls it with the same size),
    /// or nil on every rank when any rank could not have it (over the limit, or no shared memory
    /// left); the caller then uses ordinary memory.
    func allocate(bytes: Int, counted: Bool = true) throws -> Segment? {
        let size = (bytes + 4095) / 4096 * 4096
        var base: UnsafeMutableRawPointer? = nil
        var window: MPI_Win? = nil
        var code = ember_mpi_success()
        let fits = !counted || allocated + size <= limit
        if fits { code = MPI_Win_allocate_shared(MPI_Aint(size), 1, ember_mpi_info_null(), node, &base, &window) }
        var ok: Int32 = fits && code == ember_mpi_success() ? 1 : 0
        MPI_Allreduce(ember_mpi_in_place(), &ok, 1, ember_mpi_int(), ember_mpi_min(), node)
        guard ok == 1, let window, let base else {
            if window != nil { MPI_Win_free(&window) }
            return nil
        }
        if counted { allocated += size }
        base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        var bases: [UnsafeMutableRawPointer] = []
        for r in 0..<world {
            var rSize: MPI_Aint = 0, unit: Int32 = 0
            var rBase: UnsafeMutableRawPointer? = nil
            code = MPI_Win_shared_query(window, Int32(r), &rSize, &unit, &rBase)
            guard code == ember_mpi_success(), let rBase else {
                throw CommunicatorError.mpi(rank: rank, operation: "MPI_Win_shared_query", code: code, message: "no shared segment")
            }
            bases.append(rBase)
        }
        MPI_Barrier(node)  // every rank has zeroed its part
        let segment = Segment(window: window, bases: bases, byteCount: size)
        segments.append(segment)
        return segment
    }

    /// Frees one segment (collective, like `allocate`).
    func release(_ segment: Segment) {
        segments.removeAll { $0 === segment }
        allocated -= segment.byteCount
        var w: MPI_Win? = segment.window
        MPI_Win_free(&w)
    }

    /// The segment and offset of `bytes` bytes at `pointer` in this rank's parts, if they are there.
    func locate(_ pointer: UnsafeRawPointer, bytes: Int) -> (Segment, Int)? {
        for s in segments {
            let offset = pointer - UnsafeRawPointer(s.bases[rank])
            if offset >= 0 && offset + bytes <= s.byteCount { return (s, offset) }
        }
        return nil
    }

    private func barrier() {
        epoch &+= 1
        ember_shm_barrier(counters, Int32(rank), Int32(world), epoch, spinLimit)
    }

    /// Each rank's copy of the same elements: `T` values at `offset` in every rank's part.
    private func parts<T>(_ s: Segment, _ offset: Int, _ type: T.Type) -> [UnsafeMutablePointer<T>] {
        s.bases.map { ($0 + offset).assumingMemoryBound(to: T.self) }
    }

    /// Sums (or averages) this rank's shard over every rank's part, into its own part.
    func reduceShard<T: FloatElement>(_ s: Segment, offset: Int, count: Int, average: Bool, _ type: T.Type) {
        let all = parts(s, offset, T.self), shard = Shards.range(count: count, rank: rank, world: world)
        barrier()  // every rank's values are written
        let inputs = all.map { $0 + shard.lowerBound }
        if T.self == Float.self {
            let p = inputs.map { Optional(UnsafeMutableRawPointer($0).assumingMemoryBound(to: Float.self)) }
            ember_sum_f32(p[rank], p, Int32(world), shard.count)
        } else {
            let p = inputs.map { Optional(UnsafeMutableRawPointer($0).assumingMemoryBound(to: Double.self)) }
            ember_sum_f64(p[rank], p, Int32(world), shard.count)
        }
        if average { ReduceOp.average(inputs[rank], count: shard.count, world: world) }
        // No barrier after: the next write to these parts comes after the next collective's
        // barrier (gatherShards, or any MPI collective), by which time every owner has summed.
    }

    /// This rank's shard of the sum of every rank's `terms` (each a segment and offset, the same
    /// on every rank), rank by rank and each rank's in order, into its part of `target`.
    func orderedSumShard(_ terms: [(Segment, Int)], count: Int, into target: (Segment, Int), dividedBy divisor: Int) {
        let shard = Shards.range(count: count, rank: rank, world: world)
        barrier()  // every rank's terms are written
        let inputs = (0..<world).flatMap { r in
            terms.map { ($0.0.bases[r] + $0.1).assumingMemoryBound(to: Float.self) + shard.lowerBound }
        }
        OrderedSum.add(inputs, count: shard.count, into: (target.0.bases[rank] + target.1).assumingMemoryBound(to: Float.self) + shard.lowerBound,
                       dividedBy: divisor)
        // No barrier after: gatherShards' first barrier orders the owners' sums before the copies.
    }

    /// Copies every other rank's shard from that rank's part into this rank's.
    func gatherShards<T: FloatElement>(_ s: Segment, offset: Int, count: Int, _ type: T.Type) {
        let all = parts(s, offset, T.self)
        barrier()  // every owner's shard is final
        for r in 0..<world where r != rank {
            let shard = Shards.range(count: count, rank: r, world: world)
            (all[rank] + shard.lowerBound).update(from: all[r] + shard.lowerBound, count: shard.count)
        }
        barrier()  // nobody changes its shard before every rank has copied it
    }

    /// Fills every other rank's shard of `buffer` (ordinary memory) with that rank's values, passed
    /// through a staging segment: each rank publishes its shard there and copies the others' out.
    /// Returns false, having done nothing, when no staging segment can be had (the caller then
    /// uses MPI); every rank returns the same.
    ///
    /// Why not share the buffer itself and gather in place: a line another core has read stays
    /// in that core's cache, and the owner's next write to it (the optimizer updating its shard)
    /// waits for that copy to be invalidated. On the development VM this made a two-rank mlp's
    /// shard update 3-6× slower (20 → 70-130 µs) whenever its cores were slow to talk. Published
    /// with `memcpy` (whole-line string stores, which invalidate without waiting), the staging
    /// lines cost one local copy of the shard, and the buffer the optimizer writes stays private.
    func gatherShardsStaged<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws -> Bool {
        let stride = MemoryLayout<T>.stride
        let shards = (0..<world).map { Shards.range(count: count, rank: $0, world: world) }
        guard let staging = try staging(bytes: shards.map(\.count).max()! * stride) else { return false }
        memcpy(staging.bases[rank], buffer + shards[rank].lowerBound, shards[rank].count * stride)
        barrier()  // every rank's shard is published
        for r in 0..<world where r != rank {
            memcpy(buffer + shards[r].lowerBound, staging.bases[r], shards[r].count * stride)
        }
        barrier()  // nobody publishes again before every rank has copied
        return true
    }

    /// The staging segment, at least `bytes` per rank, kept between calls (collective, like
    /// `allocate`; a smaller one is freed when a larger one is needed). For `gatherShardsStaged`.
    private func staging(bytes: Int) throws -> Segment? {
        if let stage, stage.byteCount >= bytes { return stage }
        if bytes <= refusedStaging { return nil }
        if let old = stage {
            release(old)
            stage = nil
        }
        stage = try allocate(bytes: bytes)
        if stage == nil { refusedStaging = max(refusedStaging, bytes) }
        return stage
    }
    private var stage: Segment?
    /// Largest staging size refused so far: not asked for again (the ask is a collective).
    private var refusedStaging = 0

    /// Frees every segment (collective; before `MPI_Finalize`).
    func free() {
        for s in segments {
            var w: MPI_Win? = s.window
            MPI_Win_free(&w)
        }
        segments = []
        var n: MPI_Comm? = node
        MPI_Comm_free(&n)
    }
}
