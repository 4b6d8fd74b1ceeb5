import Foundation
import Synchronization

/// SIGTERM and SIGINT (what batch systems send before killing a job), and SIGUSR1 (what
/// `mpirun` forwards to every rank; `launch/mpirun` turns its own SIGTERM into it) become a request
/// to stop at the next step boundary, where the run writes a checkpoint and exits cleanly.
public enum StopSignal {
    static let requested = Atomic<Int32>(0)

    /// The signal that asked to stop, or 0.
    public static var received: Int32 { requested.load(ordering: .relaxed) }

    public static func install() {
        for sig in [SIGTERM, SIGINT, SIGUSR1] {
            signal(sig) { s in
                // A second signal while stopping ends the process at once.
                if StopSignal.requested.load(ordering: .relaxed) != 0 { _exit(128 + s) }
                StopSignal.requested.store(s, ordering: .relaxed)
            }
        }
    }

    /// For tests: forget a received signal.
    public static func reset() { requested.store(0, ordering: .relaxed) }
}
