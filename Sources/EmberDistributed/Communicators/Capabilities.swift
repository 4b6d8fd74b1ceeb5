/// What some communicators can do beyond `Communicator`. Code that needs more than the
/// collectives asks for one of these (`comm as? TransportSelecting`) rather than for a backend.

/// A communicator holding process-wide resources to release once, at the end of the program
/// (MPI's `MPI_Finalize`).
public protocol FinalizingCommunicator: Communicator {
    func finalize()
}

/// How reductions of `reductionBuffer`s travel between the ranks of one node.
public enum ReductionTransport: String, Sendable {
    /// Through shared memory: each rank sums its shard from the others' buffers in place.
    case sharedMemory = "shm"
    /// Through the communication library's own transport.
    case mpi
}

/// A communicator whose reductions can take more than one transport, switchable between
/// collectives (identically on every rank: DataParallel's `TransportTuner` does this).
public protocol TransportSelecting: Communicator {
    /// The transport reductions of `reductionBuffer`s use now.
    var transport: ReductionTransport { get set }
    /// Whether shared memory is available at all (all ranks on one node, and wanted).
    var usesSharedMemory: Bool { get }
    /// Whether the transport is left to DataParallel's tuner (true) or fixed by the settings.
    var transportIsTuned: Bool { get }
    /// Whether `.sharedMemory` means shared memory within each node and MPI between nodes.
    var spansNodes: Bool { get }
}

extension TransportSelecting {
    public var spansNodes: Bool { false }
    /// For logs and benchmark lines: "auto" (tuned), "shm", "shm+mpi" (two levels) or "mpi".
    public var transportName: String {
        transportIsTuned ? "auto" : spansNodes && transport == .sharedMemory ? "shm+mpi" : transport.rawValue
    }
}

extension Communicator {
    /// The transport's name where it can be selected, else the backend's (for logs).
    public var transportDescription: String { (self as? TransportSelecting)?.transportName ?? backendName }
}

/// How the ranks sit on nodes: what the trainer sizes BLAS threads and overlap by when the
/// launcher does not say, and what its start-up check reports.
public protocol NodeTopology: Communicator {
    /// Ranks on this rank's node (this one included).
    var ranksOnThisNode: Int { get }
    /// Nodes the job spans.
    var nodes: Int { get }
}

extension LocalCommunicator: NodeTopology {
    /// Ranks as threads all share this process's node.
    public var ranksOnThisNode: Int { worldSize }
    public var nodes: Int { 1 }
}

extension SingleProcessCommunicator: NodeTopology {
    public var ranksOnThisNode: Int { 1 }
    public var nodes: Int { 1 }
}

extension Communicator {
    /// The node layout, where this communicator knows it (MPI, ranks as threads); nil otherwise.
    public var topology: NodeTopology? { self as? NodeTopology }
    /// The choice of transport for reductions, where there is one (MPI); nil otherwise.
    public var transportSelection: TransportSelecting? { self as? TransportSelecting }
    /// Ends the communication library (`MPI_Finalize`) where there is one; nothing otherwise.
    public func finalizeIfNeeded() { (self as? FinalizingCommunicator)?.finalize() }
}
