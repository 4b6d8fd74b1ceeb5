import CEmberProducts

/// bfloat16: the upper half of a float32 (8 exponent bits, 7 mantissa bits).
public enum BFloat16 {
    /// The bfloat16 nearest `x` (ties to even), as its 16 bits; NaN stays NaN.
    public static func bits(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7FC0 }
        let b = x.bitPattern
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// The float32 a bfloat16's bits stand for (exact).
    public static func float(bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// `x` rounded to the nearest bfloat16, as a float32.
    public static func rounded(_ x: Float) -> Float { float(bits: bits(x)) }

    /// `count` floats rounded to bfloat16 bits as `bits(_:)` rounds each (and PyTorch: subnormals
    /// kept, which the CPU's own conversion would flush to zero).
    public static func round(_ source: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count: Int) {
        ember_round_bf16_exact(source, out, count)
    }

    /// `count` bfloat16 bits widened to floats (exact), each times `scale`.
    public static func widen(_ source: UnsafePointer<UInt16>, into out: UnsafeMutablePointer<Float>, count: Int, scale: Float = 1) {
        if scale == 1 {
            for i in 0..<count { out[i] = float(bits: source[i]) }
        } else {
            for i in 0..<count { out[i] = float(bits: source[i]) * scale }
        }
    }
}
