@_spi(Checks) import Ember
import Foundation

/// Chooses, and chooses again from time to time, between shared memory and Open MPI's own
/// transport for DataParallel's reductions, by timing whole steps under each.
///
/// Whole steps, because the cost moves: reading other ranks' gradients in place saves Open MPI's
/// two copies, but leaves those cache lines shared, so the next backward's writes to them must
/// first take them back. On the two-core VM this was written on, shared memory made a two-rank
/// `mlp` step about 20 µs faster while its cores exchanged data quickly and about as much slower
/// while they did not, and the host switched between the two every few minutes.
///
/// Every `period` steps: `trial` steps over MPI, `trial` over shared memory (the first of each
/// not counted: it still pays for the switch), then every rank agrees on the slower rank's
/// median step time for each (an allreduce of two numbers) and the faster transport stays on
/// for the rest of the period.
final class TransportTuner {
    let period: Int, trial: Int
    /// Switches the transport (true: shared memory) before the next step's reductions.
    private let apply: (Bool) -> Void
    /// The elementwise maximum over ranks (an allreduce), so every rank decides alike.
    private let agree: ([Double]) throws -> [Double]
    private var step = 0
    private var lastEnd: UInt64?
    private var samples: [[Double]] = [[], []]  // step seconds over MPI, over shared memory
    /// The latest trial: median step seconds over MPI and over shared memory, and the choice.
    private(set) var lastTrial: (mpi: Double, sharedMemory: Double, chose: Bool)?
    /// How many trials there have been, and how many chose shared memory.
    private(set) var trials = 0, sharedMemoryWins = 0

    init(period: Int = 500, trial: Int = 8, apply: @escaping (Bool) -> Void, agree: @escaping ([Double]) throws -> [Double]) {
        require(trial >= 2 && period > 2 * trial, "a tuner period needs room for two trials of at least two steps")
        self.period = period
        self.trial = trial
        self.apply = apply
        self.agree = agree
        apply(false)  // step 0 opens the first trial, over MPI
    }

    /// Called by every rank when a step's reductions have finished, `now` in nanoseconds.
    func stepEnded(at now: UInt64 = DispatchTime.now().uptimeNanoseconds) throws {
        let j = step % period  // the step that just ended
        if let lastEnd, j != 0, j != trial, j < 2 * trial {
            samples[j < trial ? 0 : 1].append(Double(now - lastEnd) / 1e9)
        }
        lastEnd = now
        step += 1
        switch (j + 1) % period {
        case 0: apply(false)
        case trial: apply(true)
        case 2 * trial:
            let medians = try agree(samples.map { $0.sorted()[$0.count / 2] })
            let shared = medians[1] < medians[0]
            lastTrial = (medians[0], medians[1], shared)
            trials += 1
            if shared { sharedMemoryWins += 1 }
            samples = [[], []]
            apply(shared)
        default: break
        }
    }
}
