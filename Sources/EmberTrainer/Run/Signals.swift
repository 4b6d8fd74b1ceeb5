import Foundation
import Synchronization

/// SIGTERM and SIGINT (what batch systems send before killing a job), and SIGUSR1 (what
/// `mpirun` forwards to every rank; `launch/mpirun` turns its own SIGTERM into it) become a request
/// to stop at the next step boundary, where the run writes a checkpoint and exits cleanly.
public enum StopSignal {
    static let requested = Atomic<Int32>(0)
    /// Set once the stop's checkpoint is on disk: a signal after that has nothing left to save.
    static let saved = Atomic<Bool>(false)
    static let terminateExits = Atomic<Bool>(false)

    /// The signal that asked to stop, or 0.
    public static var received: Int32 { requested.load(ordering: .relaxed) }

    /// - Parameter terminateExits: SIGTERM ends the process at once instead of asking for a
    ///   checkpoint. `launch/mpirun` asks for this (`EMBER_SIGTERM=exit`): there the graceful
    ///   signal arrives as SIGUSR1, and a SIGTERM is mpirun ending the job because a rank died,
    ///   when waiting for the dead rank in a last checkpoint only delays the end.
    public static func install(terminateExits: Bool = false) {
        StopSignal.terminateExits.store(terminateExits, ordering: .relaxed)
        for sig in [SIGTERM, SIGINT, SIGUSR1] {
            signal(sig) { s in
                if s == SIGTERM && StopSignal.terminateExits.load(ordering: .relaxed) { _exit(128 + s) }
                // A second signal while stopping ends the process at once: cleanly when the
                // checkpoint is already written, as forced (128 + signal) when it is not.
                if StopSignal.requested.load(ordering: .relaxed) != 0 { _exit(StopSignal.saved.load(ordering: .relaxed) ? 0 : 128 + s) }
                StopSignal.requested.store(s, ordering: .relaxed)
            }
        }
    }

    /// The run has written the checkpoint a stop asked for.
    static func checkpointSaved() { saved.store(true, ordering: .relaxed) }

    /// For tests: forget a received signal.
    public static func reset() {
        requested.store(0, ordering: .relaxed)
        saved.store(false, ordering: .relaxed)
    }
}
