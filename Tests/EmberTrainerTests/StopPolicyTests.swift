import XCTest
@testable import EmberTrainer

/// The one place a run's early stop is decided.
final class StopPolicyTests: XCTestCase {
    func policy(patience: Int?, minDelta: Double = 0, higherIsBetter: Bool = false) -> StopPolicy {
        var c = TrainerConfig()
        c.patience = patience
        c.minDelta = minDelta
        return StopPolicy(config: c, higherIsBetter: higherIsBetter)
    }

    func testPatienceCountsEpochsWithoutAnImprovementOfMinDelta() {
        var p = policy(patience: 2, minDelta: 0.1)
        XCTAssertFalse(p.observe(1.0))
        XCTAssertFalse(p.observe(0.95), "0.05 is less than min-delta: not an improvement")
        XCTAssertFalse(p.observe(0.85), "0.15 better than the best (1.0) is")
        XCTAssertEqual(p.best, 0.85)
        XCTAssertFalse(p.observe(0.9))
        XCTAssertFalse(p.observe(0.9))
        XCTAssertTrue(p.observe(0.9), "three epochs without improvement exceed a patience of 2")
    }

    func testAMetricWhereHigherIsBetterImprovesUpwards() {
        var p = policy(patience: 0, higherIsBetter: true)
        XCTAssertFalse(p.observe(0.5))
        XCTAssertFalse(p.observe(0.6))
        XCTAssertTrue(p.observe(0.55))
    }

    func testWithoutPatienceNothingStopsButTheBestIsKept() {
        var p = policy(patience: nil)
        for v in [3.0, 4, 5, 6] { XCTAssertFalse(p.observe(v)) }
        XCTAssertEqual(p.best, 3)
        XCTAssertEqual(p.epochsWithoutImprovement, 3)
    }

    func testANonFiniteLossDivergesAndAStopWaitsForAnOptimizerStepBeforeTheEpochsEnd() {
        let p = policy(patience: nil)
        XCTAssertNil(p.divergence(BatchStatistics(lossSum: 4, samples: 2), step: 3))
        guard case .diverged(let loss, 3)? = p.divergence(BatchStatistics(lossSum: .nan, samples: 2), step: 3) else { return XCTFail() }
        XCTAssertTrue(loss.isNaN)
        let signal = BatchStatistics(lossSum: 1, samples: 1, stopSignal: true)
        XCTAssertNil(p.atBatchEnd(signal, boundary: false, last: false) { "" }, "inside an accumulation")
        XCTAssertNil(p.atBatchEnd(signal, boundary: true, last: true) { "" }, "the epoch's end decides that one")
        guard case .interrupted? = p.atBatchEnd(signal, boundary: true, last: false, request: { "" }) else { return XCTFail() }
        let request = BatchStatistics(lossSum: 1, samples: 1, stopRequest: true)
        guard case .requested("enough")? = p.atBatchEnd(request, boundary: true, last: false, request: { "enough" }) else { return XCTFail() }
    }

    func testAtAnEpochsEndASignalComesBeforeEarlyStoppingAndARequest() {
        let p = policy(patience: 1)
        guard case .interrupted? = p.afterEpoch(signal: true, earlyStopping: true, requested: true, request: { "" }) else { return XCTFail() }
        guard case .earlyStopping? = p.afterEpoch(signal: false, earlyStopping: true, requested: true, request: { "" }) else { return XCTFail() }
        XCTAssertNil(p.afterEpoch(signal: false, earlyStopping: false, requested: false, request: { "" }))
    }
}
