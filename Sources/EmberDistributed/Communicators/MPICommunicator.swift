import CMPI
@_spi(Checks) import Ember
import Foundation
import Synchronization

/// Collectives over MPI for processes started by `mpirun`, `srun` or a batch system.
///
/// All MPI calls run on one serial queue (MPI is initialised with `MPI_THREAD_SERIALIZED`), which
/// also lets asynchronous allreduces overlap the caller's backward pass. A watchdog ends the job
/// when a collective exceeds `timeout`, naming the rank and the operation, so a lost rank never
/// leaves the others hanging.
public final class MPICommunicator: SerialQueueCommunicator, FinalizingCommunicator, TransportSelecting, NodeTopology, @unchecked Sendable {
    /// Whether reductions go through shared memory when all ranks share a node.
    public struct SharedMemorySetting: Sendable, Equatable {
        /// true: always, false: never, nil: let Ember decide (two ranks: yes, tuned; more: no).
        public var enabled: Bool?
        /// At most this many bytes of shared segments per rank (containers' /dev/shm is small);
        /// buffers past it use ordinary memory over MPI.
        public var limitBytes: Int
        public init(enabled: Bool? = nil, limitBytes: Int = .max) {
            self.enabled = enabled
            self.limitBytes = limitBytes
        }
    }

    public let rank: Int
    public let worldSize: Int
    public let timeout: Double
    /// When this returns true (the job is shutting down, say on SIGTERM), collectives give up
    /// after `shutdownTimeout` seconds instead of `timeout`: a peer that died then cannot hold the
    /// job past the batch system's kill deadline.
    public let isShuttingDown: @Sendable () -> Bool
    public var shutdownTimeout = 8.0
    let queue = DispatchQueue(label: "ember.mpi")
    private let watch = NSLock()
    private var current: (operation: String, started: Date, number: UInt64)?
    /// Collectives issued so far (the same count on every rank), and where the node's ranks are.
    private var collectives: UInt64 = 0
    private var heartbeats: Heartbeats?
    private static var initialized = false
    private var scratchBuffer: UnsafeMutableRawPointer?
    private var scratchBytes = 0
    /// The bfloat16 sum, created on first use (on the queue).
    private var bfloat16SumOp: MPI_Op?
    /// Set when all ranks share this node and shared memory is wanted (`SharedMemorySetting`).
    private(set) var shared: SharedMemoryReducer?
    /// Set when the job spans nodes of equally many ranks: shared memory within each, MPI between.
    private(set) var hierarchy: HierarchicalReducer?
    public typealias Transport = ReductionTransport
    /// The transport reductions of `reductionBuffer`s use now (`.mpi` without shared memory).
    /// Change it only between collectives, identically on every rank (DataParallel's tuner does);
    /// the caller's thread alone sets it, the communication queue reads it inside collectives.
    public var transport: ReductionTransport {
        get { usesSharedMemoryNow.load(ordering: .acquiring) ? .sharedMemory : .mpi }
        set { usesSharedMemoryNow.store(newValue == .sharedMemory, ordering: .releasing) }
    }
    private let usesSharedMemoryNow = Atomic<Bool>(false)
    /// Whether the transport is fixed by the setting or left to DataParallel's tuner, which
    /// tries both now and then and keeps whichever makes whole steps faster.
    public private(set) var transportIsTuned = false

    public var backendName: String { "mpi" }

    /// Initialises MPI (once per process) and returns the world communicator.
    /// - Parameters:
    ///   - isShuttingDown: when it returns true (the job is shutting down, say on SIGTERM),
    ///     collectives give up after `shutdownTimeout` seconds instead of `timeout`.
    public init(timeout: Double = 300, sharedMemory: SharedMemorySetting = SharedMemorySetting(),
                isShuttingDown: @escaping @Sendable () -> Bool = { false }) throws {
        self.isShuttingDown = isShuttingDown
        if !MPICommunicator.initialized {
            var provided: Int32 = 0
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            let code = MPI_Init_thread(&argc, &argv, ember_mpi_thread_serialized(), &provided)
            guard code == ember_mpi_success() else {
                throw CommunicatorError.mpi(rank: -1, operation: "MPI_Init_thread", code: code, message: "MPI could not start")
            }
            MPICommunicator.initialized = true
            MPI_Comm_set_errhandler(ember_mpi_comm_world(), ember_mpi_errors_return())
        }
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(ember_mpi_comm_world(), &r)
        MPI_Comm_size(ember_mpi_comm_world(), &s)
        rank = Int(r)
        worldSize = Int(s)
        self.timeout = timeout
        // Tuning switches transports by timing, so it must not change results: with two ranks
        // both add a + b; with more, Open MPI's order differs from the rank order shared memory
        // uses, and only an explicit EMBER_SHARED_MEMORY=1 turns shared memory on.
        if sharedMemory.enabled ?? (worldSize == 2) {
            shared = try SharedMemoryReducer(comm: ember_mpi_comm_world(), rank: rank, world: worldSize, limit: sharedMemory.limitBytes)
            transport = shared == nil ? .mpi : .sharedMemory
            transportIsTuned = shared != nil && sharedMemory.enabled == nil
        }
        // Across nodes the two-level sum is always used when it can be (it adds in another
        // order than a flat MPI allreduce, so it is not switched by timing).
        if shared == nil, worldSize >= 4, sharedMemory.enabled != false {
            hierarchy = try HierarchicalReducer(world: ember_mpi_comm_world(), rank: rank, worldSize: worldSize, limit: sharedMemory.limitBytes)
            if hierarchy != nil { transport = .sharedMemory }
        }
        heartbeats = Heartbeats(comm: ember_mpi_comm_world(), rank: rank, worldSize: worldSize)
        (ranksOnThisNode, nodes) = MPICommunicator.topology()
        startWatchdog()
    }

    public private(set) var ranksOnThisNode = 1, nodes = 1

    /// Ranks on this node (a shared-memory split of the world) and nodes (one leader each).
    private static func topology() -> (Int, Int) {
        var node: MPI_Comm? = nil
        guard MPI_Comm_split_type(ember_mpi_comm_world(), ember_mpi_comm_type_shared(), 0, ember_mpi_info_null(), &node) == ember_mpi_success()
        else { return (1, 1) }
        defer { MPI_Comm_free(&node) }
        var size: Int32 = 0, local: Int32 = 0
        MPI_Comm_size(node, &size)
        MPI_Comm_rank(node, &local)
        var leader: Int32 = local == 0 ? 1 : 0
        MPI_Allreduce(ember_mpi_in_place(), &leader, 1, ember_mpi_int(), ember_mpi_sum(), ember_mpi_comm_world())
        return (Int(size), Int(leader))
    }

    /// Whether reductions of `reductionBuffer`s can go through shared memory (all ranks on one node).
    public var usesSharedMemory: Bool { shared != nil }
    /// Whether they go through shared memory within each node and MPI between nodes.
    public var spansNodes: Bool { hierarchy != nil }

    /// Shuts MPI down; call once at the end of the program.
    public func finalize() {
        queue.sync {
            shared?.free()
            hierarchy?.free()
            heartbeats?.free()
            _ = MPI_Finalize()
        }
    }

    public func reductionBuffer(count: Int, dtype: DType) throws -> Tensor {
        let bytes = count * dtype.byteSize
        if let shared, let segment = try queue.sync(execute: { try shared.allocate(bytes: bytes) }) {
            return Tensor(external: segment.bases[rank], shape: [count], dtype: dtype, owner: segment)
        }
        if let hierarchy, let segment = try queue.sync(execute: { try hierarchy.allocate(bytes: bytes) }) {
            return Tensor(external: segment.bases[hierarchy.localRank], shape: [count], dtype: dtype, owner: segment)
        }
        return Tensor.zeros([count], dtype: dtype)
    }

    /// Sums (averages) `count` values at `buffer` over the job in two levels, when the buffer is
    /// in one of the hierarchy's segments; false, having done nothing, otherwise.
    private func acrossNodes<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp, _ operation: String) throws -> Bool {
        guard op == .sum || op == .average, transport == .sharedMemory, let hierarchy,
              let (segment, offset) = hierarchy.node.locate(buffer, bytes: count * MemoryLayout<T>.stride) else { return false }
        require(count <= Int(Int32.max), "\(operation) of more than 2^31 values in one call")
        try call(operation + " (shared memory within \(hierarchy.nodes) nodes, MPI between)") {
            hierarchy.allreduce(segment, offset: offset, count: count, average: op == .average, worldSize: worldSize, T.self)
        }
        return true
    }

    /// Runs `body` under the watchdog when `count` values at `buffer` lie in a shared segment.
    private func inSharedMemory<T>(_ buffer: UnsafeMutablePointer<T>, count: Int, _ operation: String,
                                   _ body: (SharedMemoryReducer, SharedMemoryReducer.Segment, Int) -> Void) throws -> Bool {
        guard transport == .sharedMemory, let shared,
              let (segment, offset) = shared.locate(buffer, bytes: count * MemoryLayout<T>.stride) else { return false }
        try call(operation + " (shared memory)") {
            body(shared, segment, offset)
            return ember_mpi_success()
        }
        return true
    }

    private func startWatchdog() {
        let thread = Thread { [weak self] in
            while let self {
                Thread.sleep(forTimeInterval: 1)
                self.watch.lock()
                let limit = self.isShuttingDown() ? min(self.timeout, self.shutdownTimeout) : self.timeout
                let stuck = self.current.flatMap { Date().timeIntervalSince($0.started) > limit ? $0 : nil }
                self.watch.unlock()
                if let stuck {
                    let missing = self.heartbeats?.describeMissing(from: stuck.number) ?? ""
                    let message = "\(CommunicatorError.timeout(rank: self.rank, operation: "\(stuck.operation) (collective #\(stuck.number))", seconds: limit))"
                        + (missing.isEmpty ? "" : "; \(missing)") + "; ending the job\n"
                    FileHandle.standardError.write(Data(message.utf8))
                    _exit(4)  // docs/errors.md: 4 is a collective that timed out
                }
            }
        }
        thread.name = "ember.mpi-watchdog"
        thread.start()
    }

    /// The bfloat16 sum (`BFloat16Reduction.swift`), made once; call on the queue.
    func bfloat16Sum() throws -> MPI_Op {
        if let bfloat16SumOp { return bfloat16SumOp }
        var op = MPI_Op(bitPattern: 0)
        try call("MPI_Op_create (bf16 sum)") { ember_mpi_bf16_sum_create(&op) }
        bfloat16SumOp = op
        return op!
    }

    /// Runs one MPI call on the communication queue under the watchdog.
    func call(_ operation: String, _ body: () throws -> Int32) throws {
        collectives += 1
        heartbeats?.entering(collectives)
        watch.lock(); current = (operation, Date(), collectives); watch.unlock()
        let code: Int32
        do {
            defer { watch.lock(); current = nil; watch.unlock(); heartbeats?.left() }
            code = try body()
        }
        guard code == ember_mpi_success() else {
            var length: Int32 = 0
            var text = [CChar](repeating: 0, count: 512)
            MPI_Error_string(code, &text, &length)
            throw CommunicatorError.mpi(rank: rank, operation: operation, code: code, message: String(cString: text))
        }
    }

    private func datatype<T: FloatElement>(_ type: T.Type) -> MPI_Datatype {
        T.self == Float.self ? ember_mpi_float() : ember_mpi_double()
    }

    func reduce<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {
        if op == .sum || op == .average,
           try inSharedMemory(buffer, count: count, "allreduce(\(op.rawValue), \(count) values)", { shared, segment, offset in
               shared.reduceShard(segment, offset: offset, count: count, average: op == .average, T.self)
               shared.gatherShards(segment, offset: offset, count: count, T.self)
           }) { return }
        if try acrossNodes(buffer, count: count, op: op, "allreduce(\(op.rawValue), \(count) values)") { return }
        require(count <= Int(Int32.max), "allreduce of more than 2^31 values in one call")
        let mpiOp: MPI_Op
        switch op {
        case .sum, .average: mpiOp = ember_mpi_sum()
        case .max: mpiOp = ember_mpi_max()
        case .min: mpiOp = ember_mpi_min()
        }
        try call("allreduce(\(op.rawValue), \(count) values)") {
            MPI_Allreduce(ember_mpi_in_place(), buffer, Int32(count), datatype(T.self), mpiOp, ember_mpi_comm_world())
        }
        // Right after the reduction, while the buffer is still in cache.
        if op == .average { ReduceOp.average(buffer, count: count, world: worldSize) }
    }

    /// A ring: in step s each rank passes one shard's partial sum to the next rank and adds the
    /// one arriving from the previous; after world − 1 steps its own shard is complete. Open
    /// MPI's `MPI_Reduce_scatter_block` took twice as long here (a reduce, then a scatter).
    func reduceShard<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int, op: ReduceOp) throws {
        if op == .sum || op == .average,
           try inSharedMemory(buffer, count: count, "reduce-scatter(\(op.rawValue), \(count) values)", { shared, segment, offset in
               shared.reduceShard(segment, offset: offset, count: count, average: op == .average, T.self)
           }) { return }
        // Across nodes the whole buffer is reduced: a superset of the shard.
        if try acrossNodes(buffer, count: count, op: op, "reduce-scatter(\(op.rawValue), \(count) values)") { return }
        require(count <= Int(Int32.max), "reduce-scatter of more than 2^31 values in one call")
        let n = worldSize
        let shards = (0..<n).map { Shards.range(count: count, rank: $0, world: n) }
        let incoming = scratch(bytes: (shards.map(\.count).max() ?? 0) * MemoryLayout<T>.stride).assumingMemoryBound(to: T.self)
        let right = Int32((rank + 1) % n), left = Int32((rank + n - 1) % n)
        for s in 0..<(n - 1) {
            let send = shards[(rank - s - 1 + 2 * n) % n], receive = shards[(rank - s - 2 + 2 * n) % n]
            try call("reduce-scatter(\(op.rawValue), \(count) values)") {
                MPI_Sendrecv(buffer + send.lowerBound, Int32(send.count), datatype(T.self), right, 41,
                             incoming, Int32(receive.count), datatype(T.self), left, 41, ember_mpi_comm_world(), ember_mpi_status_ignore())
            }
            ReduceOp.accumulate(op, into: buffer + receive.lowerBound, from: incoming, count: receive.count)
        }
        let mine = shards[rank]
        if op == .average { ReduceOp.average(buffer + mine.lowerBound, count: mine.count, world: n) }
    }

    func gatherShards<T: FloatElement>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {
        if try inSharedMemory(buffer, count: count, "allgather of shards (\(count) values)", { shared, segment, offset in
            shared.gatherShards(segment, offset: offset, count: count, T.self)
        }) { return }
        if transport == .sharedMemory, let shared {
            var staged = false
            try call("allgather of shards (\(count) values, shared memory)") {
                staged = try shared.gatherShardsStaged(buffer, count: count)
                return ember_mpi_success()
            }
            if staged { return }
        }
        require(count <= Int(Int32.max), "allgather of more than 2^31 values in one call")
        let shards = (0..<worldSize).map { Shards.range(count: count, rank: $0, world: worldSize) }
        var counts = shards.map { Int32($0.count) }, offsets = shards.map { Int32($0.lowerBound) }
        try call("allgather of shards (\(count) values)") {
            MPI_Allgatherv(ember_mpi_in_place(), 0, datatype(T.self), buffer, &counts, &offsets, datatype(T.self), ember_mpi_comm_world())
        }
    }

    /// A receive buffer kept between calls (used on the queue only).
    func scratch(bytes: Int) -> UnsafeMutableRawPointer {
        if scratchBytes < bytes {
            scratchBuffer?.deallocate()
            scratchBuffer = .allocate(byteCount: bytes, alignment: 64)
            scratchBytes = bytes
        }
        return scratchBuffer!
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) throws {
        try queue.sync {
            try call("broadcast from rank \(root)") {
                MPI_Bcast(buffer, Int32(byteCount), ember_mpi_byte(), Int32(root), ember_mpi_comm_world())
            }
        }
    }

    public func allgather(_ values: [Double]) throws -> [[Double]] {
        let n = values.count
        var all = [Double](repeating: 0, count: n * worldSize)
        var mine = values
        try queue.sync {
            try call("allgather") {
                mine.withUnsafeMutableBufferPointer { send in
                    all.withUnsafeMutableBufferPointer { recv in
                        MPI_Allgather(send.baseAddress, Int32(n), ember_mpi_double(), recv.baseAddress, Int32(n),
                                      ember_mpi_double(), ember_mpi_comm_world())
                    }
                }
            }
        }
        return (0..<worldSize).map { Array(all[($0 * n)..<(($0 + 1) * n)]) }
    }

    public func barrier() throws {
        try queue.sync { try call("barrier") { MPI_Barrier(ember_mpi_comm_world()) } }
    }

    public func abort(code: Int32) -> Never {
        // Give mpirun a moment to forward what this rank just printed about why.
        usleep(300_000)
        MPI_Abort(ember_mpi_comm_world(), code)
        exit(code)
    }
}

/// Which launcher started this process, read from the environment it sets.
public struct LaunchEnvironment: Sendable, CustomStringConvertible {
    public let launcher: String?
    /// The world size the launcher announced (nil without one).
    public let announcedWorldSize: Int?
    /// How many of the job's ranks run on this node, when the launcher says (Open MPI, MPICH).
    public var localSize: Int? = nil

    /// Reads the variables launchers set from `env` (the process environment, which launch code
    /// passes in).
    public static func detect(_ env: [String: String]) -> LaunchEnvironment {
        if let size = env["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) {
            let underSlurm = env["SLURM_JOB_ID"] != nil
            return LaunchEnvironment(launcher: underSlurm ? "mpirun (OpenMPI) in Slurm job \(env["SLURM_JOB_ID"]!)" : "mpirun (OpenMPI)",
                                     announcedWorldSize: size, localSize: env["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init))
        }
        if let size = env["PMIX_SIZE"].flatMap(Int.init) ?? env["SLURM_NTASKS"].flatMap(Int.init), env["SLURM_PROCID"] != nil {
            return LaunchEnvironment(launcher: "srun (Slurm job \(env["SLURM_JOB_ID"] ?? "?"))", announcedWorldSize: size,
                                     localSize: slurmTasks(onNode: env["SLURM_NODEID"].flatMap(Int.init), env["SLURM_STEP_TASKS_PER_NODE"]))
        }
        if let size = env["PMI_SIZE"].flatMap(Int.init) {
            return LaunchEnvironment(launcher: "PMI launcher (mpiexec/hydra)", announcedWorldSize: size,
                                     localSize: env["MPI_LOCALNRANKS"].flatMap(Int.init))
        }
        return LaunchEnvironment(launcher: nil, announcedWorldSize: nil)
    }

    /// This node's entry of Slurm's tasks per node ("2(x3),1": two on each of the first three
    /// nodes, then one).
    static func slurmTasks(onNode node: Int?, _ list: String?) -> Int? {
        guard let node, let list else { return nil }
        var first = 0
        for entry in list.split(separator: ",") {
            let parts = entry.split(separator: "(")
            guard let tasks = Int(parts[0]) else { return nil }
            let repeats = parts.count > 1 ? Int(parts[1].dropFirst().dropLast()) ?? 1 : 1
            if node < first + repeats { return tasks }
            first += repeats
        }
        return nil
    }

    /// Whether overlapping gradient allreduces with backward should pay off, the default for
    /// `DataParallel(overlap:)` in the trainer. Overlap hands communication to a second thread,
    /// which wins when that thread finds an idle core or waits on a network. When every rank of
    /// the job is on this node and their compute threads already fill its cores, the second
    /// thread can only take time from backward (two ranks on two cores here: 2% slower).
    public func overlapPaysOff(threadsPerRank: Int, cores: Int) -> Bool {
        guard let world = announcedWorldSize, world > 1, let local = localSize else { return true }
        return local < world || local * threadsPerRank < cores
    }

    /// Whether MPI should be started (a launcher asked for more than one rank, or for MPI).
    public var wantsMPI: Bool { launcher != nil }

    public var description: String {
        guard let launcher else { return "no launcher (single process)" }
        return "\(launcher), world size \(announcedWorldSize ?? 1)"
    }
}
