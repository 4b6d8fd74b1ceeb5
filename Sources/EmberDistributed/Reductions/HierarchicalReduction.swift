import CMPI
@_spi(Checks) import Ember

/// Allreduce for a job spanning nodes: shared memory within each node, MPI between the nodes.
///
/// A flat MPI allreduce sends every rank's whole buffer over the network in its steps. Here the
/// ranks of a node first sum their buffers in shared memory (each local rank owning one shard of
/// the node's sum, like `SharedMemoryReducer`), then local rank i of every node allreduces only
/// shard i with its peers on the other nodes — the nodes' links carry each element once per
/// node, all local ranks' shards at the same time — and finally each node copies the shards
/// together in shared memory. Horovod's hierarchical allreduce and NCCL's trees are built alike.
/// Needs the same number of ranks (at least two) on every node; used on the communicator's queue.
final class HierarchicalReducer {
    /// Sums within this node (its ranks only).
    let node: SharedMemoryReducer
    /// This rank and the ranks of the same local rank on the other nodes.
    private let peers: MPI_Comm
    let localRank: Int, localSize: Int, nodes: Int
    private let world: MPI_Comm

    /// Nil on every rank unless the job spans two or more nodes with the same number (≥ 2) of
    /// ranks each, and every node could set up shared memory.
    init?(world: MPI_Comm, rank: Int, worldSize: Int, limit: Int) throws {
        var nodeComm: MPI_Comm? = nil
        MPI_Comm_split_type(world, ember_mpi_comm_type_shared(), Int32(rank), ember_mpi_info_null(), &nodeComm)
        var size: Int32 = 0, local: Int32 = 0
        MPI_Comm_size(nodeComm, &size)
        MPI_Comm_rank(nodeComm, &local)
        // [-size, size, leaders]: the same node size everywhere, and how many nodes.
        var shape: [Int32] = [-size, size]
        MPI_Allreduce(ember_mpi_in_place(), &shape, 2, ember_mpi_int(), ember_mpi_max(), world)
        var leaders: Int32 = local == 0 ? 1 : 0
        MPI_Allreduce(ember_mpi_in_place(), &leaders, 1, ember_mpi_int(), ember_mpi_sum(), world)
        guard -shape[0] == shape[1], size >= 2, leaders >= 2, nodeComm != nil else {
            if nodeComm != nil { MPI_Comm_free(&nodeComm) }
            return nil
        }
        defer { MPI_Comm_free(&nodeComm) }  // the reducer keeps a communicator of its own
        let reducer = try SharedMemoryReducer(comm: nodeComm!, rank: Int(local), world: Int(size), limit: limit)
        var usable: Int32 = reducer == nil ? 0 : 1
        MPI_Allreduce(ember_mpi_in_place(), &usable, 1, ember_mpi_int(), ember_mpi_min(), world)
        guard usable == 1, let reducer else {
            reducer?.free()
            return nil
        }
        var peers: MPI_Comm? = nil
        MPI_Comm_split(world, local, Int32(rank), &peers)
        guard let peers else { return nil }
        self.node = reducer
        self.peers = peers
        self.world = world
        localRank = Int(local)
        localSize = Int(size)
        nodes = Int(leaders)
    }

    /// A shared segment of `bytes` per rank on every node, or nil on every rank of the job when
    /// any node could not have one (all ranks must then reduce alike, over MPI).
    func allocate(bytes: Int) throws -> SharedMemoryReducer.Segment? {
        let segment = try node.allocate(bytes: bytes)
        var ok: Int32 = segment == nil ? 0 : 1
        MPI_Allreduce(ember_mpi_in_place(), &ok, 1, ember_mpi_int(), ember_mpi_min(), world)
        if ok == 0, let segment { node.release(segment) }
        return ok == 1 ? segment : nil
    }

    /// Sums (or averages over all `worldSize` ranks) `count` values at `offset` of `segment`
    /// across the job, in place; returns the MPI error code of the exchange between nodes.
    func allreduce<T: FloatElement>(_ segment: SharedMemoryReducer.Segment, offset: Int, count: Int, average: Bool,
                                    worldSize: Int, _ type: T.Type) -> Int32 {
        node.reduceShard(segment, offset: offset, count: count, average: false, T.self)
        let shard = Shards.range(count: count, rank: localRank, world: localSize)
        let mine = (segment.bases[localRank] + offset).assumingMemoryBound(to: T.self) + shard.lowerBound
        let code = MPI_Allreduce(ember_mpi_in_place(), mine, Int32(shard.count), T.self == Float.self ? ember_mpi_float() : ember_mpi_double(),
                                 ember_mpi_sum(), peers)
        if average { ReduceOp.average(mine, count: shard.count, world: worldSize) }
        node.gatherShards(segment, offset: offset, count: count, T.self)
        return code
    }

    func free() {
        node.free()
        var p: MPI_Comm? = peers
        MPI_Comm_free(&p)
    }
}
