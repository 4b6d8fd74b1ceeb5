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
}

extension TransportSelecting {
    /// For logs and benchmark lines: "auto" (tuned), "shm" or "mpi".
    public var transportName: String { transportIsTuned ? "auto" : transport.rawValue }
}

extension Communicator {
    /// The transport's name where it can be selected, else the backend's (for logs).
    public var transportDescription: String { (self as? TransportSelecting)?.transportName ?? backendName }
}
