import XCTest
@testable import EmberDistributed

/// The tuner's schedule and decisions, driven by made-up step times.
final class TransportTunerTests: XCTestCase {
    /// Runs `steps` steps taking `seconds(shared, step)` each; returns the transport of every step.
    func run(_ steps: Int, period: Int = 20, trial: Int = 4, seconds: (Bool, Int) -> Double) throws -> (modes: [Bool], tuner: TransportTuner) {
        var shared = true, agreed: [[Double]] = []
        let tuner = TransportTuner(period: period, trial: trial, apply: { shared = $0 }, agree: { agreed.append($0); return $0 })
        var modes: [Bool] = [], clock: UInt64 = 1_000_000_000
        for s in 0..<steps {
            modes.append(shared)
            clock += UInt64(seconds(shared, s) * 1e9)
            try tuner.stepEnded(at: clock)
        }
        XCTAssertEqual(agreed.count, steps / period + (steps % period > 2 * trial ? 1 : 0), "one agreement per trial")
        return (modes, tuner)
    }

    func testEachPeriodTriesBothThenKeepsTheFasterOne() throws {
        // Shared memory is faster for the first 40 steps, slower after.
        let (modes, tuner) = try run(60) { shared, step in step < 40 ? (shared ? 0.9 : 1.0) : (shared ? 1.2 : 1.0) }
        let trials = [false, false, false, false, true, true, true, true]
        XCTAssertEqual(Array(modes[0..<8]), trials)
        XCTAssertEqual(Array(modes[8..<20]), Array(repeating: true, count: 12), "shared memory won the first trial")
        XCTAssertEqual(Array(modes[20..<28]), trials, "every period tries both again")
        XCTAssertEqual(Array(modes[48..<60]), Array(repeating: false, count: 12), "MPI won once shared memory became slower")
        XCTAssertEqual(tuner.lastTrial?.chose, false)
        XCTAssertEqual(tuner.trials, 3)
        XCTAssertEqual(tuner.sharedMemoryWins, 2)
        XCTAssertEqual(tuner.lastTrial?.mpi ?? 0, 1.0, accuracy: 1e-9)
        XCTAssertEqual(tuner.lastTrial?.sharedMemory ?? 0, 1.2, accuracy: 1e-9)
    }

    /// The first step after each switch pays for it and is not counted; the median ignores one outlier.
    func testSwitchStepsAndOutliersDoNotDecide() throws {
        let (modes, _) = try run(20) { shared, step in
            if step == 0 || step == 4 { return 50 }  // the steps right after a switch
            if step == 6 { return 99 }               // one slow shared-memory step
            return shared ? 0.8 : 1.0
        }
        XCTAssertTrue(modes[8...].allSatisfy { $0 })
    }
}
