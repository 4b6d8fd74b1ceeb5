import XCTest
@testable import Ember

/// How far a float32 product may be from the exact one: each of the `k` multiply-adds of an
/// element rounds once, so `|C - AB| ≤ γ·(|A||B|)` elementwise with γ ≈ k·ε (ε = 2⁻²⁴). The bound
/// grows with the product's size and holds for any summation order or kernel family, where a
/// fixed 1e-5 does not. (Higham, Accuracy and Stability of Numerical Algorithms, §3.5.)
struct ProductBound {
    let exact: Tensor, bound: Tensor

    /// `a·b` (float32 inputs, each `[m, k]`/`[k, n]` after transposes) in float64, and the bound.
    init(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false, k: Int) {
        let a64 = a.to(.float64), b64 = b.to(.float64)
        exact = a64.matmul(b64, transposeA: transposeA, transposeB: transposeB)
        let gamma = Double(k + 2) * 0x1p-24
        bound = a64.abs().matmul(b64.abs(), transposeA: transposeA, transposeB: transposeB) * gamma + 1e-30
    }

    /// The worst ratio of the error to its bound (≤ 1 passes).
    func worstRatio(of c: Tensor) -> Double {
        ((c.to(.float64) - exact).abs() / bound).max().doubleItem()
    }
}

/// Fails when a float32 product is farther from the exact one than rounding allows.
func assertWithinProductBound(_ c: Tensor, _ expected: ProductBound, _ what: @autoclosure () -> String,
                              file: StaticString = #filePath, line: UInt = #line) {
    let ratio = expected.worstRatio(of: c)
    XCTAssertLessThanOrEqual(ratio, 1, "\(what()): error \(ratio) × its rounding bound", file: file, line: line)
}
