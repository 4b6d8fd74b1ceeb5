import XCTest
import Ember
@testable import EmberDistributed

/// Which gradients travel together: a pure function of the parameters' sizes and dtypes.
final class BucketAssignmentTests: XCTestCase {
    let f32 = DType.float32, f64 = DType.float64

    func testParametersGoInReverseOrderIntoBucketsOfAtMostTheCapacity() {
        let sizes = [400, 400, 400, 400].map { (bytes: $0, dtype: f32) }
        XCTAssertEqual(BucketAssignment.assign(sizes, capacityBytes: 800), [[3, 2], [1, 0]])
        XCTAssertEqual(BucketAssignment.assign(sizes, capacityBytes: 1000), [[3, 2], [1, 0]])
        XCTAssertEqual(BucketAssignment.assign(sizes, capacityBytes: 1600), [[3, 2, 1, 0]])
    }

    func testAParameterLargerThanABucketIsABucketOfItsOwnAndNeverSplit() {
        let sizes = [100, 5000, 100].map { (bytes: $0, dtype: f32) }
        XCTAssertEqual(BucketAssignment.assign(sizes, capacityBytes: 1024), [[2], [1], [0]])
    }

    func testDtypesNeverShareABucket() {
        let sizes = [(bytes: 8, dtype: f64), (bytes: 4, dtype: f32), (bytes: 4, dtype: f32), (bytes: 8, dtype: f64)]
        XCTAssertEqual(BucketAssignment.assign(sizes, capacityBytes: 1 << 20), [[3], [2, 1], [0]])
    }

    func testEveryParameterIsInExactlyOneBucket() {
        let g = Generator(seed: 9)
        let sizes = (0..<50).map { _ in (bytes: Int(Tensor.rand([1], generator: g).item() * 3000) + 4, dtype: DType.float32) }
        let groups = BucketAssignment.assign(sizes, capacityBytes: 4096)
        XCTAssertEqual(groups.flatMap { $0 }.sorted(), Array(0..<50))
        for group in groups where group.count > 1 { XCTAssertLessThanOrEqual(group.map { sizes[$0].bytes }.reduce(0, +), 4096) }
        XCTAssertEqual(BucketAssignment.assign([], capacityBytes: 4096), [])
    }
}
