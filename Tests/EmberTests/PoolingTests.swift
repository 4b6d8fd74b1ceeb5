import XCTest
@testable import Ember

/// Max pooling's fast paths (SIMD 2×2, interior windows) against a plain reference, NaN included.
final class PoolingTests: XCTestCase {
    func reference(_ x: [Float], n: Int, h: Int, w: Int, k: Int, s: Int) -> [Float] {
        let oh = (h - k) / s + 1, ow = (w - k) / s + 1
        var out: [Float] = []
        for p in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var best = -Float.infinity
                    for i in 0..<k { for j in 0..<k {
                        let v = x[p * h * w + (oy * s + i) * w + ox * s + j]
                        if v > best || v.isNaN { best = v }
                        if best.isNaN { break }
                    } }
                    out.append(best)
                }
            }
        }
        return out
    }

    func testFastPathsMatchThePlainRule() {
        for (h, w, k, s) in [(28, 28, 2, 2), (10, 10, 2, 2), (9, 37, 2, 2), (12, 30, 3, 3), (11, 11, 3, 2)] {
            var values = Tensor.randn([3 * h * w], generator: Generator(seed: UInt64(h * w))).scalars
            values[5] = .nan
            values[h * w + 2 * w + 17 % w] = .nan
            let x = Tensor(values, shape: [1, 3, h, w], requiresGrad: true)
            let y = x.maxPool2d(kernelSize: (k, k), stride: (s, s))
            let want = reference(values, n: 3, h: h, w: w, k: k, s: s)
            XCTAssertEqual(y.scalars.count, want.count)
            for (a, b) in zip(y.scalars, want) {
                XCTAssertTrue(a == b || (a.isNaN && b.isNaN), "\(h)x\(w) k\(k) s\(s): \(a) vs \(b)")
            }
            // The gradient lands on exactly one element per window.
            y.sum().backward()
            XCTAssertEqual(x.grad!.sum().item(), Float(want.count))
        }
    }
}
