import CEmberSupport

/// Sums that give the same bits in any order: values are rounded onto a grid (a power of two,
/// `scale` grid points per unit) and added as integers held in doubles, exact while every
/// partial sum stays below 2^53. Choose the grid from the largest magnitude of everything to be
/// summed with `FixedPointSum.scale(largest:terms:)`. Float32 tensors (what training holds).
public enum FixedPointSum {
    /// The finest grid on which `terms` values of magnitude at most `largest` sum exactly.
    public static func scale(largest: Double, terms: Int) -> Double {
        guard largest > 0 && largest.isFinite else { return 1 }
        let headroom = Int.bitWidth - (Swift.max(terms, 1) - 1).leadingZeroBitCount  // ⌈log2 terms⌉ (0 for one term)
        return Double(sign: .plus, exponent: 52 - headroom - (largest.exponent + 1), significand: 1)
    }

    /// The largest magnitude in `t` (NaN ignored).
    public static func largestMagnitude(_ t: Tensor) -> Double {
        require(t.dtype == .float32, "FixedPointSum works on float32 tensors, got \(t.dtype)")
        return Double(ember_absmax_f32(t.pointer(Float.self), t.count))
    }

    /// `acc += round(t · scale)` elementwise (`acc = …` when `first`); `acc` is float64 of
    /// `t`'s element count.
    public static func accumulate(_ t: Tensor, into acc: Tensor, scale: Double, first: Bool = false) {
        require(t.dtype == .float32 && acc.dtype == .float64 && acc.count == t.count, "FixedPointSum.accumulate: a float32 tensor into a float64 one of its size")
        if first {
            ember_fixed_store_f32(acc.pointer(Double.self), t.pointer(Float.self), t.count, scale)
        } else {
            ember_fixed_accumulate_f32(acc.pointer(Double.self), t.pointer(Float.self), t.count, scale)
        }
    }

    /// `out = acc · factor` as float32 (`factor` = 1 / (scale · divisor) for a mean).
    public static func unscale(_ acc: Tensor, into out: Tensor, factor: Double) {
        require(out.dtype == .float32 && acc.dtype == .float64 && acc.count == out.count, "FixedPointSum.unscale: a float64 tensor into a float32 one of its size")
        ember_fixed_unscale_f32(out.pointer(Float.self), acc.pointer(Double.self), out.count, factor)
    }
}
